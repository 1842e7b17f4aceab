// The page's picture path without a browser: kiln.js (WebAssembly) under node prepares each
// picture file as the page does (KilnWeb.prepareImage: kiln's stb_image and kiln/pixels, grey by
// luma) and classifies it; prints one JSON array, a row a file: file, label, logits and the
// softmax probabilities (kiln-classify's).
//   node web/node_classify.js KILN_JS MODEL.kiln IMAGE...
// With --rgba-check first, it also checks the page's other path, pixels a browser decoded
// (prepareRGBA), against the file path on seeded random RGBA pictures of odd sizes, written as
// PNG by the few lines below (node's zlib): the two inputs must be equal to the bit.
"use strict";
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");
const { KilnWeb } = require(path.join(__dirname, "kiln_api.js"));

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
// An 8-bit RGBA PNG (colour type 6, no filtering) of w x h pixels.
function png(rgba, w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4), body = Buffer.concat([Buffer.from(type, "ascii"), data]), crc = Buffer.alloc(4);
    len.writeUInt32BE(data.length); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 6;
  const raw = Buffer.alloc(h * (1 + 4 * w));
  for (let y = 0; y < h; ++y) Buffer.from(rgba.buffer, rgba.byteOffset + 4 * w * y, 4 * w).copy(raw, y * (1 + 4 * w) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(raw)),
                        chunk("IEND", Buffer.alloc(0))]);
}

(async () => {
  const args = process.argv.slice(2);
  const rgbaCheck = args[0] === "--rgba-check";
  if (rgbaCheck) args.shift();
  const [kilnJs, model, ...images] = args;
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  kw.loadModel(fs.readFileSync(model));
  if (rgbaCheck) {
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    for (const [w, h] of [[37, 53], [80, 24], [13, 13]]) {
      const rgba = new Uint8Array(4 * w * h).map(() => rand());
      const a = kw.prepareImage(png(rgba, w, h), true), b = kw.prepareRGBA(rgba, w, h, true);
      const unequal = a.reduce((n, v, i) => n + (v !== b[i]), 0);
      if (a.length !== b.length || unequal) throw new Error(`RGBA path: ${unequal} of ${a.length} inputs differ from the PNG path (${w}x${h})`);
    }
    console.error("node_classify: the RGBA path gives the PNG path's input to the bit on 3 random RGBA pictures");
  }
  const rows = images.map((file) => {
    const logits = kw.predict(kw.prepareImage(fs.readFileSync(file), true));
    const m = Math.max(...logits), e = logits.map((v) => Math.exp(v - m)), s = e.reduce((x, y) => x + y, 0);
    return { file, label: logits.indexOf(m), logits, probabilities: e.map((v) => v / s) };
  });
  console.log(JSON.stringify(rows));
})().catch((e) => { console.error("node_classify: " + e.message); process.exit(1); });
