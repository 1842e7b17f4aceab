// Images for the node checks (web/node_check.js, bench/runtime_predict.js): image k of IDX images
// (magic 2051, then n, h, w) or of a CIFAR binary batch (a label byte, then the pixels), as
// kiln-web-check reads them, for a model whose input is `px` = C x H x W values.
"use strict";
function imageReader(im, px, labels) {
  if (im.length >= 16 && im.readUInt32BE(0) === 2051) {
    if (im.readUInt32BE(8) * im.readUInt32BE(12) !== px) throw new Error("the IDX images are not the model's size");
    return { count: im.readUInt32BE(4), pixels: (k) => im.subarray(16 + k * px, 16 + (k + 1) * px),
             label: (k) => (labels ? labels[8 + k] : undefined) };
  }
  if (im.length % (1 + px) !== 0) throw new Error("neither IDX images nor a CIFAR batch for this model's input");
  return { count: im.length / (1 + px), pixels: (k) => im.subarray(k * (1 + px) + 1, (k + 1) * (1 + px)),
           label: (k) => im[k * (1 + px)] };
}
module.exports = { imageReader };
