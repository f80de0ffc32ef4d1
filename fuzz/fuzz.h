/* SPDX-License-Identifier: MIT */
/*
 * Every fuzz target defines LLVMFuzzerTestOneInput().  Built with
 * -Dfuzz=true and clang, they link libFuzzer; otherwise they link
 * replay.c, whose main() runs the target over the files and directories
 * named on its command line, so `meson test` replays the corpora (systemd's
 * fuzz-main.c, zstd's regression driver).
 */
#ifndef DRGW_FUZZ_H
#define DRGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
