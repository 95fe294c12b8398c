// `dsvl2 merge-lora`: fold a trained adapter folder (PEFT LoRA and/or
// trained.safetensors from `dsvl2 train`) into a complete checkpoint folder.
#include <cstdio>
#include <memory>

#include "command.h"
#include "train/checkpoint_out.h"

namespace dsvl2::cli {
namespace {

struct MergeOptions {
  std::string base, adapter, out;
};

Command reg("merge-lora", "Merge a LoRA adapter / trained tensors into a complete checkpoint folder",
            [](CLI::App& app) {
              auto o = std::make_shared<MergeOptions>();
              app.add_option("-m,--model", o->base, "Base checkpoint folder")->required();
              app.add_option("--adapter", o->adapter, "Output folder of dsvl2 train (or a PEFT adapter)")->required();
              app.add_option("--out", o->out, "Folder to write")->required();
              return std::function<int()>([o] {
                const int n = merge_lora_folder(o->base, o->adapter, o->out);
                std::printf("merged %d LoRA matri%s; wrote %s\n", n, n == 1 ? "x" : "ces", o->out.c_str());
                return 0;
              });
            });

}  // namespace
}  // namespace dsvl2::cli
