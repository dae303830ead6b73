/**
 * The two scripts the guest runs.
 *
 * Stage one is /init in the initrd (busybox sh, fixed for a given lab version, cached with the
 * initrd): it mounts /proc, /sys, /dev with /dev/pts and /dev/shm, loads every module the guest
 * needs (virtio, 9p, dummy, the RDMA stack), mounts the host's root read-only, tmpfs on /run and
 * /tmp, the run directory share at /run/rxe-lab and the workspace share writable over its own
 * path, then switch_roots into the host's root and runs the run's stage two from the run share.
 *
 * Stage two is written per run (the host's dash, iproute2 and env): it brings up lab0 and rxe0,
 * finds the address's GID index, reports readiness on the console, runs the command with its
 * stdout and stderr in files of the run share (streamed by the host as they grow), records the
 * exit status there and powers the guest off.
 *
 * The console carries only lines starting with `rxe-lab:` (and kernel messages), never the
 * command's output, so neither can mangle the other.
 */
import { gidIndexVariable, guestNetwork, ipv4MappedGid, peerGidIndexVariable, vethPairNetwork, type LabNetwork } from './guest-network.js';

/** Mount the 9p root: the order verified in shared/notes/environment.md, each after what it needs. */
export const rootModules: readonly string[] = [
  'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci',
  'netfs', 'fscache', '9pnet', '9pnet_virtio', '9p',
];

/**
 * The lab's link and RDMA stack, loaded from the initrd too (with their dependencies, resolved on
 * the host): insmod of a static busybox from RAM is much cheaper under TCG than modprobe, a dynamic
 * binary reading its indexes through 9p.
 */
export const labModules: readonly string[] = ['dummy', 'rdma_rxe', 'ib_uverbs', 'rdma_ucm'];

/** 9p mount tags of the three shares QEMU exports. */
export const shareTags = { hostRoot: 'hostroot', workspace: 'workspace', run: 'labrun' } as const;

/** Where stage one mounts the run share; stage two and the files in it are addressed from here. */
export const guestRunDir = '/run/rxe-lab';

/** Files of the run directory, shared between host and guest. */
export const runFiles = {
  stageTwo: 'guest.sh',
  workspacePath: 'workspace',
  stdout: 'stdout',
  stderr: 'stderr',
  status: 'status',
} as const;

/** Console markers: the host parses these lines. */
export const consoleMarker = { prefix: 'rxe-lab:', ready: 'rxe-lab: ready', setupFailed: 'rxe-lab: setup failed:' } as const;

/** What stage two writes to the status file: `exit N` after the command, or `setup-failed REASON`. */
export const statusWords = { exit: 'exit', setupFailed: 'setup-failed' } as const;

// msize 512000: the largest the virtio transport takes; fewer round trips for big reads (node_modules).
const ninePOptions = 'trans=virtio,version=9p2000.L,msize=512000';

/** Stage one, given every module to load in load order (their files are in the initrd's /lib/modules). */
export function stageOneScript(moduleNames: readonly string[]): string {
  return `#!/bin/busybox sh
# rxe-lab stage one (initrd /init). See packages/lab/src/guest-scripts.ts.
b=/bin/busybox
fail() { echo "${consoleMarker.prefix} boot failed: $*"; echo o > /proc/sysrq-trigger; while :; do $b sleep 60; done; }
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t devtmpfs devtmpfs /dev
$b mkdir -p /dev/pts /dev/shm
$b mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail "devpts"
$b mount -t tmpfs tmpfs /dev/shm || fail "tmpfs on /dev/shm"
for module in ${moduleNames.join(' ')}; do
  $b insmod /lib/modules/$module.ko || fail "insmod $module"
done
$b mount -t 9p -o ${ninePOptions},ro,cache=loose ${shareTags.hostRoot} /newroot || fail "mount of the host root"
# /tmp and /run first, so a workspace below them (a clone in /tmp) is mounted on top, not hidden.
$b mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "tmpfs on /run"
$b mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "tmpfs on /tmp"
$b mkdir -p /newroot${guestRunDir}
$b mount -t 9p -o ${ninePOptions} ${shareTags.run} /newroot${guestRunDir} || fail "mount of the run directory"
read -r workspace < /newroot${guestRunDir}/${runFiles.workspacePath} || fail "no workspace path"
$b mkdir -p "/newroot$workspace" || fail "no mount point for the workspace at $workspace"
$b mount -t 9p -o ${ninePOptions},cache=loose ${shareTags.workspace} "/newroot$workspace" || fail "mount of the workspace at $workspace"
for filesystem in dev proc sys; do
  $b mount --move /$filesystem /newroot/$filesystem || fail "move of /$filesystem"
done
exec $b switch_root /newroot /bin/sh ${guestRunDir}/${runFiles.stageTwo}
fail "switch_root"
`;
}

export interface StageTwoInput {
  readonly cwd: string;
  readonly command: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  /** The guest powers itself off after this long even if the host is gone (a host killed with SIGKILL cannot kill QEMU). */
  readonly guardSeconds: number;
  readonly network: LabNetwork;
}

// rxe0 turns ACTIVE within a few ms of `rdma link add` on a dummy link; 5 s covers a loaded host.
const rxeActiveWaitTenths = 50;
// The GIDs of one address sit near the start of the table (index 1 today); rxe's table has 1024.
const gidTableScanMax = 1024;

/**
 * Stage two. Each program started under TCG costs a dynamic binary loaded through 9p (up to a
 * second on a loaded host), so it starts four: ip (one batch), rdma (one batch), env and the
 * command (the veth pair adds modprobe). Uptime, port state and the GID are read with the shell's
 * own `read`.
 */
export function stageTwoScript(input: StageTwoInput): string {
  const run = guestRunDir;
  const environment = Object.entries(input.environment).map(([name, value]) => shellQuote(`${name}=${value}`));
  return `# rxe-lab stage two, generated for one run. See packages/lab/src/guest-scripts.ts.
set -u
power_off() { sync; echo o > /proc/sysrq-trigger; while :; do sleep 60; done; }
fail() {
  echo "${consoleMarker.setupFailed} $*"
  echo "${statusWords.setupFailed} $*" > ${run}/${runFiles.status}
  power_off
}
( sleep ${input.guardSeconds}; echo "${consoleMarker.prefix} guest time limit of ${input.guardSeconds} s reached"; echo o > /proc/sysrq-trigger ) &
ulimit -l unlimited
${rxeReadyFunction}
${input.network === 'single' ? singleDeviceSetup() : vethPairSetup()}
read -r uptime_seconds idle_seconds < /proc/uptime
echo "${consoleMarker.ready} uptime $uptime_seconds s"
cd ${shellQuote(input.cwd)} || fail "cannot enter the working directory"
env -i ${environment.join(' ')} ${gidIndexArguments(input.network)} ${input.command.map(shellQuote).join(' ')} < /dev/null > ${run}/${runFiles.stdout} 2> ${run}/${runFiles.stderr}
echo "${statusWords.exit} $?" > ${run}/${runFiles.status}
power_off
`;
}

/**
 * rxe_ready DEVICE GID VARIABLE: waits for port 1 of DEVICE to be ACTIVE, then finds GID in its
 * table and sets the shell variable VARIABLE to its index (passed to the command by gidIndexArguments).
 */
const rxeReadyFunction = `rxe_ready() {
  port=/sys/class/infiniband/$1/ports/${guestNetwork.rdmaPort}
  tries=0
  while :; do
    read -r port_state < $port/state || port_state=missing
    case "$port_state" in *ACTIVE*) break ;; esac
    tries=$((tries + 1))
    [ $tries -le ${rxeActiveWaitTenths} ] || fail "$1 port ${guestNetwork.rdmaPort} not ACTIVE: $port_state"
    sleep 0.1
  done
  gid_index=0
  while :; do
    [ $gid_index -lt ${gidTableScanMax} ] || fail "no GID $2 on $1"
    gid=none
    read -r gid 2>/dev/null < $port/gids/$gid_index
    [ "$gid" = $2 ] && break
    gid_index=$((gid_index + 1))
  done
  eval "$3=$gid_index"
}`;

/** The GID index variables rxe_ready set, as env arguments. */
function gidIndexArguments(network: LabNetwork): string {
  const names = network === 'single' ? [gidIndexVariable] : [gidIndexVariable, peerGidIndexVariable];
  return names.map((name) => `"${name}=$${name}"`).join(' ');
}

/** The default: rxe0 on the dummy lab0. */
function singleDeviceSetup(): string {
  const { netdev, address, prefixLength, rdmaDevice } = guestNetwork;
  return `ip -batch - <<'LINKS' || fail "ip: lo and ${netdev} up with ${address}/${prefixLength}"
link set lo up
link add ${netdev} type dummy
address add ${address}/${prefixLength} dev ${netdev}
link set ${netdev} up
LINKS
rdma link add ${rdmaDevice} type rxe netdev ${netdev} || fail "rdma link add ${rdmaDevice}"
rxe_ready ${rdmaDevice} ${ipv4MappedGid(address)} ${gidIndexVariable}`;
}

/**
 * rxe0 and rxe1 on the two ends of a veth pair. Host routes (/32) in the main table send each
 * address out of the other end; the local table's rule moves from 0 to 100, behind two rules that
 * send locally generated traffic (iif lo) for our two addresses to the main table first. Arriving
 * at the other end, a packet is still delivered locally (the local table, by its input rule;
 * accept_local: its source is one of ours). The routes are in the main table, not a table of
 * their own, because rdma_cm validates a connect request with a lookup that has no input
 * interface (so the iif-lo rules do not apply) but the receiving netdev as output interface:
 * it must find the route back to the client through that netdev.
 */
function vethPairSetup(): string {
  const veth = vethPairNetwork;
  const accepts = [veth.netdev, veth.peerNetdev].map((link) => `echo 1 > /proc/sys/net/ipv4/conf/${link}/accept_local`).join('\n');
  return `modprobe veth || fail "modprobe veth"
ip -batch - <<'LINKS' || fail "ip: the veth pair ${veth.netdev}/${veth.peerNetdev} and its policy routes"
link set lo up
link add ${veth.netdev} address ${veth.macAddress} type veth peer name ${veth.peerNetdev} address ${veth.peerMacAddress}
address add ${veth.address}/32 dev ${veth.netdev}
address add ${veth.peerAddress}/32 dev ${veth.peerNetdev}
link set ${veth.netdev} up
link set ${veth.peerNetdev} up
neighbour replace ${veth.peerAddress} lladdr ${veth.peerMacAddress} dev ${veth.netdev} nud permanent
neighbour replace ${veth.address} lladdr ${veth.macAddress} dev ${veth.peerNetdev} nud permanent
route add ${veth.peerAddress}/32 dev ${veth.netdev} src ${veth.address}
route add ${veth.address}/32 dev ${veth.peerNetdev} src ${veth.peerAddress}
rule add pref 10 iif lo to ${veth.peerAddress} lookup main
rule add pref 11 iif lo to ${veth.address} lookup main
rule add pref 100 lookup local
rule del pref 0 lookup local
LINKS
${accepts}
rdma -b - <<'DEVICES' || fail "rdma link add ${veth.rdmaDevice} and ${veth.peerRdmaDevice}"
link add ${veth.rdmaDevice} type rxe netdev ${veth.netdev}
link add ${veth.peerRdmaDevice} type rxe netdev ${veth.peerNetdev}
DEVICES
rxe_ready ${veth.rdmaDevice} ${ipv4MappedGid(veth.address)} ${gidIndexVariable}
rxe_ready ${veth.peerRdmaDevice} ${ipv4MappedGid(veth.peerAddress)} ${peerGidIndexVariable}`;
}

/** One word for sh, whatever it contains. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
