// Preloaded with `node --require` by gatewaylens: make every TCP server this process opens listen on
// 127.0.0.1 when the gateway asked for "all interfaces" (no host, 0.0.0.0 or ::). Portkey's
// start-server calls serve({port}) without a hostname, which would otherwise expose the gateway
// (and the fake upstream keys it holds) on every interface of the machine.
"use strict";
const net = require("node:net");
const WILDCARD = new Set([undefined, null, "", "0.0.0.0", "::"]);
const original = net.Server.prototype.listen;
net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    if (first.path === undefined && WILDCARD.has(first.host)) {
      args[0] = { ...first, host: "127.0.0.1" };
    }
  } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (args.length === 1 || typeof args[1] === "function") {
      args.splice(1, 0, "127.0.0.1");
    } else if (WILDCARD.has(args[1])) {
      args[1] = "127.0.0.1";
    }
  }
  return original.apply(this, args);
};
