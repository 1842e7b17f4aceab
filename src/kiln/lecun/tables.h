// `kiln lecun1989`'s two tables, as markdown: the reproduction (the paper, the 2022 reference
// reproduction and kiln over n seeds) and the step-by-step modernisation (a row per recipe of
// modern_recipes(), each adding to the one above, n seeds each). docs/lecun1989.md shows both.
#pragma once
#include <functional>
#include <string>

#include "kiln/lecun/zipcode.h"

namespace kiln::lecun {

// Trains classic_recipe() with seeds 0..seeds-1 one after another; on_pass sees every pass
// of every seed (progress), on_seed each seed as it starts.
std::string reproduction_table(const ZipcodeData& z, int seeds, const std::function<void(int seed)>& on_seed = {},
                               const std::function<void(const PassMetrics&)>& on_pass = {});

// Trains every modern recipe with seeds 0..seeds-1, `threads` seeds at a time (each seed's run
// is single-threaded and deterministic, so the table does not depend on `threads`); on_row
// sees each row as it is finished.
std::string modern_table(const ZipcodeData& z, int seeds, int threads,
                         const std::function<void(const std::string& row)>& on_row = {});

}  // namespace kiln::lecun
