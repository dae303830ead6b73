/** Constants of the RxRPC service module that importers may need without running it. */

import { RxErrorCode } from '@roce-rpc/rxrpc';

/**
 * Abort code of a call refused because the thread is at its bound: rxrpc's
 * SERVER_BUSY (110, VBUSY, as OpenAFS servers refuse overload with
 * rx_SetBusyThreshold), which AFS clients treat as "retry later". The same
 * code rxrpc sends for new calls while a process drains.
 */
export const RX_BUSY_ABORT_CODE = RxErrorCode.SERVER_BUSY;
