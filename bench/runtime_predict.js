// The dependency-free runtime's speed in WebAssembly: kiln.js under node classifies the first N
// images of an IDX file with a .kiln model, one at a time through the page's own calls
// (web/kiln_api.js); prints one JSON object: the count right and the milliseconds per image
// (wall clock around the predict calls only; loading excluded).
//   node bench/runtime_predict.js KILN_JS MODEL.kiln IMAGES-idx3-ubyte LABELS-idx1-ubyte N
"use strict";
const fs = require("fs");
const path = require("path");
const { KilnWeb } = require(path.join(__dirname, "..", "web", "kiln_api.js"));
const [kilnJs, model, images, labels, count] = process.argv.slice(2);
(async () => {
  const kw = new KilnWeb(await require(path.resolve(kilnJs))());
  const info = kw.loadModel(fs.readFileSync(model));
  const im = fs.readFileSync(images), lb = fs.readFileSync(labels);
  const h = im.readUInt32BE(8), w = im.readUInt32BE(12), n = Math.min(Number(count), im.readUInt32BE(4));
  if (h !== info.height || w !== info.width) throw new Error("the images are not the model's size");
  let right = 0;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; ++k) {
    const z = kw.predict(Array.from(im.subarray(16 + k * h * w, 16 + (k + 1) * h * w)));
    right += z.indexOf(Math.max(...z)) === lb[8 + k];
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  console.log(JSON.stringify({ runner: "node " + process.version + " (WebAssembly)", kind: info.kind, images: n, right,
                               ms_per_image: ms }));
})().catch((e) => { console.error("runtime_predict: " + e.message); process.exit(1); });
