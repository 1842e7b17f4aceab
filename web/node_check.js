// The page's check without a browser: kiln.js (WebAssembly) under node, the same calls as the
// page's test mode. Prints one JSON object (like kiln-web-check, the native build of the same code).
//   node web/node_check.js KILN_JS MODEL.kiln IMAGES-idx3-ubyte INDEX DIGITS.bin RECIPE PASSES SEED
"use strict";
const fs = require("fs");
const path = require("path");
const { KilnWeb, kilnTrain1989 } = require(path.join(__dirname, "kiln_api.js"));
const [kilnJs, model, images, index, digits, recipe, passes, seed] = process.argv.slice(2);
(async () => {
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  const info = kw.loadModel(fs.readFileSync(model));
  const im = fs.readFileSync(images);
  const n = im.readUInt32BE(4), h = im.readUInt32BE(8), w = im.readUInt32BE(12), k = Number(index);
  if (k >= n || h !== info.height || w !== info.width) throw new Error("image " + k + " does not fit the model");
  const logits = kw.predict(Array.from(im.subarray(16 + k * h * w, 16 + (k + 1) * h * w)));
  const label = logits.indexOf(Math.max(...logits));
  kw.loadDigits(fs.readFileSync(digits));
  const t0 = Date.now();
  const metrics = await kilnTrain1989(kw, Number(recipe), Number(seed), Number(passes), () => {});
  const wall = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ runner: "node " + process.version + " (WebAssembly)", info, label, logits,
                               recipe: kw.recipes()[Number(recipe)], metrics, wall_seconds: wall }));
})().catch((e) => { console.error("node_check: " + e.message); process.exit(1); });
