#pragma once
namespace dlcarbon::build_info {
const char* version();  // project version, e.g. "0.1.0"
const char* git_sha();  // commit of the build, "unknown" outside a checkout
}  // namespace dlcarbon::build_info
