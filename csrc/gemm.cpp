#include "gemm.h"
namespace genesis::GENESIS_ISA_NS {
void matmul(const View&, const View&, const View&, bool) { throw std::runtime_error("pending"); }
}
