# Image resolution of the paper's runs (docs/algorithm.md §8), shared by training (common.sh) and inference
# (infer.sh): swift's Qwen2.5-VL template reads these through qwen_vl_utils; unset, qwen_vl_utils
# allows up to 16,384 visual tokens per image, so a checkpoint would see other resolutions at test time.
export MAX_PIXELS="${MAX_PIXELS:-401408}"
export MIN_PIXELS="${MIN_PIXELS:-$(( MAX_PIXELS < 262144 ? MAX_PIXELS : 262144 ))}"   # never above MAX_PIXELS
