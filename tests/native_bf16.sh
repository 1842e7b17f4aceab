# Sourced by the tests that choose bf16 or fp32 work by the CPU: native_bf16 KILN prints 1 where
# the CPU does bf16 arithmetic (AMX, AVX512-BF16), 0 where LibTorch emulates it, as `kiln env`'s
# "bf16:" line says (the test train.precision = auto makes); no such line fails the caller.
native_bf16() {
  local line; line=$("$1" env | sed -n 's/^bf16: //p')
  case "$line" in
    AMX|AVX512-BF16) echo 1 ;;
    emulated*) echo 0 ;;
    *) echo "FAIL: kiln env has no bf16 line ('$line')" >&2; return 1 ;;
  esac
}
