// Starts @seamapi/fake-seam-connect on 127.0.0.1 (a free port unless PORT is set), seeds it the way its
// own server.js does (`fake.seed()`), and prints one line `FAKE_SEAM_READY {"url": ..., "seed": {...}}`.
import http from "node:http";
import process from "node:process";

import { createFake } from "@seamapi/fake-seam-connect";

// The fake listens on every interface; keep it on loopback.
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === "number") {
    const callback = rest.find((arg) => typeof arg === "function");
    return listen.call(this, port, "127.0.0.1", callback);
  }
  return listen.call(this, port, ...rest);
};

const fake = await createFake();
const seed = await fake.seed();
const server = await fake.startServer({ port: Number(process.env.PORT ?? 0) });
const { port } = server.server.address();
process.stdout.write(`FAKE_SEAM_READY ${JSON.stringify({ url: `http://127.0.0.1:${port}`, seed })}\n`);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
