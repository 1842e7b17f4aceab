// `kiln export --format onnx` (issue #24): a checkpoint's network as an ONNX graph (opset 17),
// written with the ONNX library (kiln/deploy/onnx_graph.h) and checked by ONNX's own checker and
// strict shape inference before it is written.
//
// What the graph computes: the network in inference mode: every BatchNorm (ghost BN included)
// as its running statistics, dropout and stochastic depth off, the output scale (or the
// head_norm division) applied; with the run's test-time augmentation (eval.tta, or
// ExportInfo::tta), as kiln's evaluation applies it (kiln::predict_with_tta): the views (the
// mirror image: Slice with step -1 along W; the one-pixel shifts: Pad mode reflect, then Slice)
// are concatenated on the batch axis (V x N images, view-major), go through the network once,
// and their logits, reshaped V x N x K, are summed with each view's weight (Mul, ReduceSum).
// Its input `pixels` is float32 N x C x H x W in 0..255 pixel units (the batch dimension is
// symbolic, `batch`); the normalisation the run trained with, (x - mean) / std per channel, is
// the graph's first two nodes (Sub, Div), so callers feed raw pixels. Its output `logits` is
// N x classes.
//
// Network kinds: resnet9 (3x3 or 2x2 whitening, pool before BN, frozen BN scale), airbench
// (2x2 whitening with its bias, 2- and 3-conv groups, output scale or head_norm), separable
// and dense. GELU, which opset 17 lacks, is written as its definition
// 0.5 x (1 + erf(x / sqrt 2)); ReLU6 as Clip(0, 6); CELU as Celu.
//
// With int8, every weight kiln quantize quantises (kiln/deploy/quantize.h: trainable conv and
// linear weights, per output channel, symmetric, on ExportInfo::grid) is an INT8 initializer with its fp32 scales
// and zero zero-points feeding DequantizeLinear (axis 0): weight-only quantisation, so ONNX
// Runtime computes with the same dequantised weights kiln quantize evaluates.
//
// metadata_props: "kiln_version", "model", "classes" (JSON array), "input_shape" (JSON [C, H,
// W]), "input" (what the input holds), "mean" and "std" (JSON, 0..255 units; already applied
// by the graph), "normalisation" = "in graph", "tta" (none | flip | flip+translate), "tta_views"
// (network passes an image: 1, 2 or 6), "int8", "config" (the TOML), with flip+translate
// "tta_translate_weight", and with int8 "int8_grid" (e.g. "int8 per-channel", "int4 per-tensor");
// how an image file becomes the input (export.h's ExportImageFit): "stored_shape" (JSON [C, H, W]
// before data.input_size's view), "resize", "background", "eval_crop".
#pragma once
#include <string>

#include "kiln/deploy/export.h"
#include "kiln/deploy/onnx_graph.h"

namespace kiln {

// The checkpoint's network as an ONNX model description (kiln/deploy/onnx_graph.h).
onnx::Model onnx_model(const LoadedCheckpoint& ckpt, const ExportInfo& info, bool int8);

// Writes `path` atomically; returns the bytes written. Throws kiln::Error naming the network or
// the checker's complaint.
int64_t export_onnx(const LoadedCheckpoint& ckpt, const ExportInfo& info, const std::string& path, bool int8);

}  // namespace kiln
