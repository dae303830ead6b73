/**
 * @roce-rpc/lab: run a command inside a QEMU guest (Debian's kernel) that has a real soft-RoCE
 * device, rxe0, with the workspace writable at its own path. See README.md.
 */
export { runInLab, labDirName, type LabResult } from './lab-run.js';
export { labDefaults, passedThroughEnvNames, type LabOptions } from './options.js';
export { LabError, LabErrorCode } from './errors.js';
export { guestNetwork, guestNetworkEnvironment } from './guest-network.js';
export { findGuestKernel, type GuestKernel } from './kernel.js';
export { until } from './until.js';
