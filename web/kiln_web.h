// kiln in the browser: a C interface over the dependency-free runtime (kiln/runtime) and the
// 1989 network's trainer (kiln/lecun/trainer1989.h), compiled to WebAssembly with emscripten
// for web/index.html, and natively for its tests (the same code both ways). One model and one
// 1989 training run at a time (module state). Functions returning int give 0 on success and -1
// on failure, with the reason in kw_error().
#pragma once
#include <cstdint>

extern "C" {
const char* kw_error();

// ---- a model exported by `kiln export --format kiln` (fp32 or int8) ----
int kw_model_load(const uint8_t* bytes, int size);
const char* kw_model_info();  // JSON: kind, classes, channels, height, width, int8, params, file_bytes, meta
float* kw_model_input();      // C x H x W floats (pixel values 0..255, planar) for the caller to fill
const float* kw_model_predict();  // logits of kw_model_input(), one per class; null on failure
int kw_model_classes();
// A picture made the model's input (kw_model_input) as kiln-classify and kiln predict make it
// (kiln/pixels/pixels.h's model_input: channels, alpha over data.background, data.resize to the
// stored size, data.eval_crop's view), a colour picture for a grey model by BT.601 luma when
// `grey` is not 0. kw_image_prepare decodes a PNG, JPEG or BMP file's bytes itself (stb_image,
// as the command line does); kw_image_prepare_rgba takes pixels a browser decoded (any format
// it reads), w x h RGBA, row-major. 0 on success, -1 with the reason in kw_error().
int kw_image_prepare(const uint8_t* bytes, int size, int grey);
int kw_image_prepare_rgba(const uint8_t* rgba, int w, int h, int grey);

// ---- LeCun 1989, trained live ----
int kw_zip_load(const uint8_t* bytes, int size);  // a digits file (kiln/lecun/trainer1989.h)
int kw_zip_recipes();                             // 0: the 1989 recipe; 1..: the modern rows
const char* kw_zip_recipe_name(int recipe);
int kw_zip_recipe_passes(int recipe);             // the recipe's own number of passes (0: no such recipe)
int kw_zip_start(int recipe, int seed, int passes);  // passes <= 0: the recipe's own
// Takes up to max_steps training steps, stopping at the end of a pass, where it measures the
// train and test error; returns the steps taken (0 once all passes are done), -1 on failure.
int kw_zip_train(int max_steps);
int kw_zip_passes_done();
int kw_zip_passes();
int kw_zip_step_in_pass();
int kw_zip_train_size();
const char* kw_zip_metrics();  // JSON array, one object a finished pass
float* kw_zip_input();         // 16 x 16 floats in [-1, 1] for the caller to fill
int kw_zip_predict();          // class of kw_zip_input() by the network being trained
const float* kw_zip_outputs(); // its 10 outputs (after kw_zip_predict)
}
