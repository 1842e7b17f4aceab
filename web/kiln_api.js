// A thin JavaScript wrapper over kiln.js (web/kiln_web.h compiled to WebAssembly), shared by
// the page (web/index.html) and the node check (web/node_check.js).
"use strict";
class KilnWeb {
  constructor(module) { this.M = module; }
  _heapU8() { return this.M.HEAPU8; }
  _heapF32() { return this.M.HEAPF32; }
  _str(ptr) { return this.M.UTF8ToString(ptr); }
  _fail(what) { throw new Error(what + ": " + this._str(this.M._kw_error())); }
  _withBytes(bytes, f) {
    const p = this.M._malloc(bytes.length);
    try {
      this._heapU8().set(bytes, p);
      return f(p, bytes.length);
    } finally { this.M._free(p); }
  }
  // ---- a .kiln model ----
  loadModel(bytes) {
    if (this._withBytes(bytes, (p, n) => this.M._kw_model_load(p, n)) !== 0) this._fail("model");
    return this.info();
  }
  info() { return JSON.parse(this._str(this.M._kw_model_info())); }
  // pixels: C*H*W values 0..255 (planar); returns the logits as a plain array
  predict(pixels) {
    const at = this.M._kw_model_input() >> 2;
    this._heapF32().set(pixels, at);
    const out = this.M._kw_model_predict();
    if (!out) this._fail("predict");
    return Array.from(this._heapF32().subarray(out >> 2, (out >> 2) + this.M._kw_model_classes()));
  }
  // A picture as the model's input, prepared as kiln-classify prepares it (web/kiln_web.h):
  // from a PNG, JPEG or BMP file's bytes, or from w x h RGBA pixels the browser decoded. Returns
  // the input (C*H*W values, planar, 0..255); predict() takes it.
  _input() {
    const at = this.M._kw_model_input() >> 2, info = this.info();
    return this._heapF32().slice(at, at + info.channels * info.height * info.width);
  }
  prepareImage(bytes, grey) {
    if (this._withBytes(bytes, (p, n) => this.M._kw_image_prepare(p, n, grey ? 1 : 0)) !== 0) this._fail("picture");
    return this._input();
  }
  prepareRGBA(rgba, w, h, grey) {
    if (this._withBytes(rgba, (p) => this.M._kw_image_prepare_rgba(p, w, h, grey ? 1 : 0)) !== 0) this._fail("picture");
    return this._input();
  }
  // ---- LeCun 1989 ----
  loadDigits(bytes) {
    if (this._withBytes(bytes, (p, n) => this.M._kw_zip_load(p, n)) !== 0) this._fail("digits");
    return this.M._kw_zip_train_size();
  }
  recipes() {
    const names = [];
    for (let i = 0; i < this.M._kw_zip_recipes(); ++i) names.push(this._str(this.M._kw_zip_recipe_name(i)));
    return names;
  }
  recipePasses(recipe) { return this.M._kw_zip_recipe_passes(recipe); }
  start(recipe, seed, passes) { if (this.M._kw_zip_start(recipe, seed, passes) !== 0) this._fail("start"); }
  train(maxSteps) {
    const n = this.M._kw_zip_train(maxSteps);
    if (n < 0) this._fail("train");
    return n;
  }
  progress() {
    return { done: this.M._kw_zip_passes_done(), passes: this.M._kw_zip_passes(),
             step: this.M._kw_zip_step_in_pass(), size: this.M._kw_zip_train_size() };
  }
  metrics() { return JSON.parse(this._str(this.M._kw_zip_metrics())); }
  // x: 256 values in [-1, 1]; returns {label, outputs}
  zipPredict(x) {
    this._heapF32().set(x, this.M._kw_zip_input() >> 2);
    const label = this.M._kw_zip_predict();
    if (label < 0) this._fail("1989 predict");
    const o = this.M._kw_zip_outputs() >> 2;
    return { label, outputs: Array.from(this._heapF32().subarray(o, o + 10)) };
  }
}
// Runs a whole training run in slices (so a page stays responsive): calls onPass after each pass.
async function kilnTrain1989(kw, recipe, seed, passes, onPass, yieldFn) {
  kw.start(recipe, seed, passes);
  let seen = 0;
  for (;;) {
    const n = kw.train(500);
    const m = kw.metrics();
    while (seen < m.length) onPass(m[seen++], kw.progress());
    if (n === 0) break;
    if (yieldFn) await yieldFn(kw.progress());
  }
  return kw.metrics();
}
if (typeof module !== "undefined") module.exports = { KilnWeb, kilnTrain1989 };
