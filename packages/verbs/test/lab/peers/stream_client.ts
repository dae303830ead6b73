// Streams 256 KiB echo requests to `port` forever: `node stream_client.ts <port>`.
// Prints "streaming" after the first verified round trip; meant to be SIGKILLed mid-transfer.
import { EchoClient, openLab, pattern } from '../support.ts';

const { device, protectionDomain } = openLab();
const client = await EchoClient.connect(device, protectionDomain, Number(process.argv[2]));
const message = pattern(3, 256 * 1024);
message[0] = 0x45; // 'E'
for (let round = 0; ; round++) {
  const reply = await client.request(message);
  if (!reply.equals(message)) throw new Error(`round ${round}: echo differs`);
  if (round === 0) console.log('streaming');
}
