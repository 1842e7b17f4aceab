// The WebAssembly build's stb_image and stb_image_resize: the implementations compiled from
// Debian's headers (libstb-dev), which the native build links as Debian's libstb instead. Only
// in kiln.js (CMakeLists.txt), for kiln/pixels (the pictures' preparation).
// Only the formats kiln reads (kiln::px::is_image_file: PNG, JPEG, BMP; the page hands others to
// the browser's decoders) and no stdio (kiln decodes bytes it read itself): a smaller kiln.js.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
