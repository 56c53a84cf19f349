#include "CCUDA.h"
#include <dlfcn.h>

int baton_cuda_driver_present(void) {
    void *handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!handle) return 0;
    dlclose(handle);
    return 1;
}
