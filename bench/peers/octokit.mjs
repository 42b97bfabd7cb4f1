// The Node peer of bench/load.sh: a minimal server that does what a Probot-style app does
// with a delivery, @octokit/webhooks `verifyAndReceive` (HMAC check, JSON parse, handler
// dispatch), and answers 200, or 400 when verification fails. Nothing is stored.
// Usage: OCTOKIT_FROM=<dir with node_modules> SECRET=... PORT=... node octokit.mjs
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";

const from = process.env.OCTOKIT_FROM;
const { Webhooks } = await import(
  pathToFileURL(path.join(from, "node_modules/@octokit/webhooks/dist-bundle/index.js")).href
);
const webhooks = new Webhooks({ secret: process.env.SECRET });
let handled = 0;
webhooks.on("pull_request", () => {
  handled += 1;
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      await webhooks.verifyAndReceive({
        id: req.headers["x-github-delivery"],
        name: req.headers["x-github-event"],
        signature: req.headers["x-hub-signature-256"],
        payload: Buffer.concat(chunks).toString("utf8"),
      });
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" }).end("refused");
    }
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => {
  process.stderr.write(`handled ${handled}\n`);
  process.exit(0);
});
