// A transport member in its own process, for tests that freeze it (SIGSTOP) or kill it. Arguments: its id,
// the id and address of its one peer, and the keepalive in ms. It prints one JSON line with its address,
// then one per message received.
import { startMember } from "./harness.js";

const [id = "b", peer = "a", peerAddress = "127.0.0.1:1", keepalive = "10000"] = process.argv.slice(2);
const member = await startMember(id, { keepaliveMs: Number(keepalive) });
member.transport.addPeer(peer, peerAddress);
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const seen = member.received.push.bind(member.received);
member.received.push = (...ms) => {
  for (const m of ms) print({ from: m.from, commit: m.commit });
  return seen(...ms);
};
print({ address: member.address });
process.on("SIGTERM", () => {
  void member.stop().then(() => process.exit(0));
});
