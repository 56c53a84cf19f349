// CUDA driver, NVRTC, cuBLASLt and NCCL entry points Baton uses, declared here and
// resolved with dlopen/dlsym at run time, so no CUDA headers or libraries are needed to build.
#ifndef BATON_CCUDA_H
#define BATON_CCUDA_H

/// Returns 1 when the CUDA driver library can be loaded on this machine, else 0.
int baton_cuda_driver_present(void);

#endif
