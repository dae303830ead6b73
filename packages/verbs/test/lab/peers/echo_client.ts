// Verified echo round trips against `port`: `node echo_client.ts <port> <rounds>`.
// Prints "ok <rounds>" and exits 0 when every reply matched.
import { EchoClient, openLab, pattern } from '../support.ts';

const { device, protectionDomain } = openLab();
const client = await EchoClient.connect(device, protectionDomain, Number(process.argv[2]));
const rounds = Number(process.argv[3] ?? 10);
for (let round = 0; round < rounds; round++) {
  const message = pattern(round + 1, 1 + ((round * 7919) % 65536));
  message[0] = 0x45; // 'E'
  const reply = await client.request(message);
  if (!reply.equals(message)) throw new Error(`round ${round}: echo differs`);
}
client.cmId.disconnect();
client.close();
protectionDomain.close();
device.close();
console.log(`ok ${rounds}`);
