// `dsvl2 preprocess`: run the official image preprocessing and save the tensors
// the model consumes (pixel_values, images_spatial_crop, num_image_tokens).
#include <cstdio>
#include <memory>

#include "command.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace dsvl2::cli {
namespace {

struct PreprocessOptions {
  std::string processor_dir, out, crop = "auto";
  std::vector<std::string> images;
};

Command reg("preprocess", "Tile images as the official DeepSeek-VL2 processor and save them as safetensors",
            [](CLI::App& app) {
              auto o = std::make_shared<PreprocessOptions>();
              app.add_option("--processor", o->processor_dir, "Folder with processor_config.json")->required();
              app.add_option("--image", o->images, "Image file (repeat for several, in prompt order)")->required();
              app.add_option("--crop", o->crop, "Local tiles: auto (when <= 2 images), on, off")
                  ->check(CLI::IsMember({"auto", "on", "off"}));
              app.add_option("--out", o->out, "Output .safetensors file")->required();
              return std::function<int()>([o] {
                const ProcessorConfig cfg = load_processor_config(o->processor_dir);
                std::vector<Image> images;
                images.reserve(o->images.size());
                for (const auto& path : o->images) images.push_back(load_image(path));
                const CropMode crop = o->crop == "on" ? CropMode::kOn : o->crop == "off" ? CropMode::kOff : CropMode::kAuto;
                const PreprocessResult res = preprocess_images(images, cfg, crop);
                save_safetensors(o->out, {{"pixel_values", &res.pixel_values},
                                          {"images_spatial_crop", &res.images_spatial_crop},
                                          {"num_image_tokens", &res.num_image_tokens}});
                std::printf("%zu image(s) -> %lld tile(s), wrote %s\n", images.size(),
                            (long long)res.pixel_values.dim(0), o->out.c_str());
                return 0;
              });
            });

}  // namespace
}  // namespace dsvl2::cli
