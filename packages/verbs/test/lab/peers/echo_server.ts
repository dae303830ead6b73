// An echo server in its own process: `node echo_server.ts [port]`.
// Prints "listening <port>", then "ended <reason>" per connection that ends.
// Runs until SIGTERM.
import { startEchoServer } from '../support.ts';

const server = startEchoServer(Number(process.argv[2] ?? 0), Number(process.env['BUSY_POLL_MICROS'] ?? 0));
server.onConnectionEnd = (reason) => console.log(`ended ${reason}`);
console.log(`listening ${server.port}`);
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
