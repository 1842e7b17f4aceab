// The page's check without a browser: kiln.js (WebAssembly) under node, the same calls as the
// page's test mode. Prints one JSON object (like kiln-web-check, the native build of the same code).
//   node web/node_check.js KILN_JS MODEL.kiln IMAGES-idx3-ubyte|CIFAR-BATCH.bin INDEX DIGITS.bin RECIPE PASSES SEED
"use strict";
const fs = require("fs");
const path = require("path");
const { KilnWeb, kilnTrain1989 } = require(path.join(__dirname, "kiln_api.js"));
const { imageReader } = require(path.join(__dirname, "node_images.js"));
const [kilnJs, model, images, index, digits, recipe, passes, seed] = process.argv.slice(2);
(async () => {
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  const info = kw.loadModel(fs.readFileSync(model));
  const im = fs.readFileSync(images);
  const k = Number(index), reader = imageReader(im, info.channels * info.height * info.width);
  if (k >= reader.count) throw new Error("no image " + k);
  const logits = kw.predict(Array.from(reader.pixels(k)));
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
