// Pictures of data, predictions and weights (`kiln show`): PNG grids with captions.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "kiln/report/png.h"

namespace kiln {

// Tiles of uint8 images (N x C x H x W, C = 1 or 3), `cols` per row, each pixel scale x scale,
// a caption under each tile in its colour.
Canvas image_grid(const torch::Tensor& images, const std::vector<std::string>& captions,
                  const std::vector<Rgb>& colors, int cols, int scale);
// Normalised float images back to 0..255 pixels with the per-channel mean and std they were
// normalised with (empty: x * 255).
torch::Tensor to_pixels(const torch::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std);
// Weights (O x C x k x k) as images, each filter stretched to 0..255 on its own.
torch::Tensor filters_to_pixels(const torch::Tensor& w);
// K x K counts: rows are true classes, columns predictions.
torch::Tensor confusion_matrix(const torch::Tensor& predictions, const torch::Tensor& labels, int64_t classes);
// Test images (uint8 N x C x H x W) with true and predicted labels, mistakes first (red,
// "true>predicted"), then correct ones (green): the first `count` of that order.
Canvas predictions_grid(const torch::Tensor& images, const torch::Tensor& labels, const torch::Tensor& predictions,
                        const std::vector<std::string>& classes, int64_t count, int scale);
// The matrix as a heat map (row-normalised shading) with the counts and class names.
Canvas confusion_image(const torch::Tensor& matrix, const std::vector<std::string>& classes);
// Per-class test accuracy from a confusion matrix (rows = true class) as CSV:
// class,images,correct,accuracy (a class without test images: accuracy empty).
std::string per_class_csv(const torch::Tensor& matrix, const std::vector<std::string>& classes);
// One CSV field: as it is, or quoted (RFC 4180, "" for ") when it holds a comma, quote or newline.
std::string csv_field(const std::string& s);

}  // namespace kiln
