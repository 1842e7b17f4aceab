// The dependency-free runtime's speed in WebAssembly: kiln.js under node classifies the first N
// images of an IDX file (or a CIFAR binary batch, LABELS "-") with a .kiln model, one at a time
// through the page's own calls (web/kiln_api.js; the file's test-time augmentation applied);
// prints one JSON object: the count right and the milliseconds per image (wall clock around the
// predict calls only; loading excluded).
//   node bench/runtime_predict.js KILN_JS MODEL.kiln IMAGES-idx3-ubyte LABELS-idx1-ubyte N
//   node bench/runtime_predict.js KILN_JS MODEL.kiln test_batch.bin - N
"use strict";
const fs = require("fs");
const path = require("path");
const { KilnWeb } = require(path.join(__dirname, "..", "web", "kiln_api.js"));
const { imageReader } = require(path.join(__dirname, "..", "web", "node_images.js"));
const [kilnJs, model, images, labels, count] = process.argv.slice(2);
(async () => {
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  const info = kw.loadModel(fs.readFileSync(model));
  const im = fs.readFileSync(images);
  const reader = imageReader(im, info.channels * info.height * info.width, labels === "-" ? null : fs.readFileSync(labels));
  const n = Math.min(Number(count), reader.count), pixels = reader.pixels, label = reader.label;
  let right = 0;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; ++k) {
    const z = kw.predict(Array.from(pixels(k)));
    right += z.indexOf(Math.max(...z)) === label(k);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  console.log(JSON.stringify({ runner: "node " + process.version + " (WebAssembly)", kind: info.kind, tta: (info.meta || {}).tta || "none", images: n, right,
                               ms_per_image: ms }));
})().catch((e) => { console.error("runtime_predict: " + e.message); process.exit(1); });
