/** Constants of the RxRPC service module that importers may need without running it. */

/**
 * Abort code of a call refused because the thread is at its bound. OpenAFS
 * servers refuse overload the same way (rx_SetBusyThreshold with VBUSY, 110),
 * which AFS clients treat as "retry later".
 */
export const RX_BUSY_ABORT_CODE = 110;
