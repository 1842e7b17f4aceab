// The page's check without a browser: kiln.js (WebAssembly) under node, the same calls as the
// page's test mode. Prints one JSON object (like kiln-web-check, the native build of the same code).
//   node web/node_check.js KILN_JS MODEL.kiln IMAGES-idx3-ubyte|CIFAR-BATCH.bin INDEX DIGITS.bin RECIPE PASSES SEED
"use strict";
const fs = require("fs");
const path = require("path");
const { KilnWeb, kilnTrain1989 } = require(path.join(__dirname, "kiln_api.js"));
const [kilnJs, model, images, index, digits, recipe, passes, seed] = process.argv.slice(2);
(async () => {
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  const info = kw.loadModel(fs.readFileSync(model));
  const im = fs.readFileSync(images);
  // Image k of IDX images (magic 2051) or of a CIFAR batch (a label byte, then the pixels), as
  // kiln-web-check reads them.
  const k = Number(index), px = info.channels * info.height * info.width;
  let at;
  if (im.length >= 16 && im.readUInt32BE(0) === 2051) {
    const n = im.readUInt32BE(4), h = im.readUInt32BE(8), w = im.readUInt32BE(12);
    if (k >= n || h * w !== px) throw new Error("image " + k + " does not fit the model");
    at = 16 + k * px;
  } else {
    if (im.length % (1 + px) !== 0 || k >= im.length / (1 + px)) throw new Error("image " + k + ": neither IDX images nor a CIFAR batch for this model");
    at = k * (1 + px) + 1;
  }
  const logits = kw.predict(Array.from(im.subarray(at, at + px)));
  const label = logits.indexOf(Math.max(...logits));
  const t0 = Date.now();
  let metrics = [];
  if (Number(passes) > 0) {  // 0: classify only (DIGITS.bin is not read), as kiln-web-check
    kw.loadDigits(fs.readFileSync(digits));
    metrics = await kilnTrain1989(kw, Number(recipe), Number(seed), Number(passes), () => {});
  }
  const wall = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ runner: "node " + process.version + " (WebAssembly)", info, label, logits,
                               recipe: kw.recipes()[Number(recipe)], metrics, wall_seconds: wall }));
})().catch((e) => { console.error("node_check: " + e.message); process.exit(1); });
