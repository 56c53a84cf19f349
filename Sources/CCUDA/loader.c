// dlopen/dlsym loader for the CUDA libraries declared in CCUDA.h. Each library is loaded once
// (pthread_once); a failure leaves a message naming the library and every path tried, or the
// first missing symbol, so a user without CUDA reads one clear line.
#define _GNU_SOURCE
#include "CCUDA.h"
#include <dlfcn.h>
#include <glob.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *title;           // what the error message calls it
    const char *const *names;    // file names to try, most preferred first
    void *handle;
    char path[1024];
    char error[4096];
} Library;

static void append(char *buffer, size_t size, const char *text) {
    size_t used = strlen(buffer);
    if (used + 1 < size) snprintf(buffer + used, size - used, "%s", text);
}

static int try_open(Library *library, const char *path) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) return 0;
    library->handle = handle;
    // Record where the loader found it (a bare name resolves through LD_LIBRARY_PATH): NVRTC's
    // headers are looked up beside the library's folder.
    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0] == '/')
        path = map->l_name;
    snprintf(library->path, sizeof library->path, "%s", path);
    return 1;
}

// Folders searched after the dynamic loader's own path.
static void candidate_folders(char folders[][512], int *count, int capacity) {
    *count = 0;
    const char *home = getenv("CUDA_HOME");
    if (!home || !*home) home = getenv("CUDA_PATH");
    const char *roots[] = {home, "/usr/local/cuda"};
    for (int r = 0; r < 2; r++) {
        if (!roots[r] || !*roots[r]) continue;
        if (*count < capacity) snprintf(folders[(*count)++], 512, "%s/lib64", roots[r]);
        if (*count < capacity) snprintf(folders[(*count)++], 512, "%s/targets/x86_64-linux/lib", roots[r]);
    }
    // PyTorch ships the CUDA libraries as pip wheels: site-packages/nvidia/<component>/lib.
    const char *patterns[] = {
        "/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
        "/usr/local/lib/python3*/site-packages/nvidia/*/lib",
        "/usr/lib/python3*/dist-packages/nvidia/*/lib",
        "/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
    };
    for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++) {
        glob_t found;
        if (glob(patterns[p], 0, NULL, &found) == 0) {
            for (size_t i = 0; i < found.gl_pathc && *count < capacity; i++)
                snprintf(folders[(*count)++], 512, "%s", found.gl_pathv[i]);
        }
        globfree(&found);
    }
}

static int open_library(Library *library) {
    snprintf(library->error, sizeof library->error, "%s not found; tried", library->title);
    for (const char *const *name = library->names; *name; name++) {
        if (try_open(library, *name)) return 1;
    }
    append(library->error, sizeof library->error, " the loader path");
    char folders[64][512];
    int count = 0;
    candidate_folders(folders, &count, 64);
    for (int f = 0; f < count; f++) {
        for (const char *const *name = library->names; *name; name++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", folders[f], *name);
            if (try_open(library, path)) return 1;
        }
        append(library->error, sizeof library->error, ", ");
        append(library->error, sizeof library->error, folders[f]);
    }
    append(library->error, sizeof library->error, " (names: ");
    for (const char *const *name = library->names; *name; name++) {
        append(library->error, sizeof library->error, *name);
        append(library->error, sizeof library->error, name[1] ? " " : ")");
    }
    append(library->error, sizeof library->error, "; set CUDA_HOME or LD_LIBRARY_PATH");
    return 0;
}

// Resolves `count` symbols into consecutive function-pointer slots of `table`. Each entry of
// `symbols` lists alternatives separated by '|', newest first (e.g. "cuMemAlloc_v2|cuMemAlloc").
static int resolve(Library *library, void *table, const char *const *symbols, size_t count) {
    void **slots = (void **)table;
    for (size_t i = 0; i < count; i++) {
        char alternatives[256];
        snprintf(alternatives, sizeof alternatives, "%s", symbols[i]);
        void *found = NULL;
        char *save = NULL;
        for (char *name = strtok_r(alternatives, "|", &save); name && !found; name = strtok_r(NULL, "|", &save))
            found = dlsym(library->handle, name);
        if (!found) {
            snprintf(library->error, sizeof library->error, "%s loaded from %s lacks the symbol %s",
                     library->title, library->path, symbols[i]);
            return 0;
        }
        slots[i] = found;
    }
    return 1;
}

#define LOADER(fn, errfn, Table, title_, symbols, ...)                                                    \
    static const char *const fn##_names[] = {__VA_ARGS__, NULL};                                          \
    static Library fn##_library = {title_, fn##_names, NULL, "", ""};                                     \
    static Table fn##_table;                                                                               \
    static int fn##_ok;                                                                                    \
    static pthread_once_t fn##_once = PTHREAD_ONCE_INIT;                                                   \
    static void fn##_load(void) {                                                                          \
        _Static_assert(sizeof(Table) == sizeof(symbols) / sizeof(*symbols) * sizeof(void *), #Table);      \
        if (!open_library(&fn##_library)) return;                                                          \
        fn##_ok = resolve(&fn##_library, &fn##_table, symbols, sizeof(symbols) / sizeof(*symbols));        \
    }                                                                                                      \
    const Table *fn(void) {                                                                                \
        pthread_once(&fn##_once, fn##_load);                                                               \
        return fn##_ok ? &fn##_table : NULL;                                                               \
    }                                                                                                      \
    const char *errfn(void) { return fn##_library.error; }

// Order matches the fields of BatonCUDADriver.
static const char *const driver_symbols[] = {
    "cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
    "cuDeviceGetAttribute", "cuDeviceTotalMem_v2|cuDeviceTotalMem", "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2|cuDevicePrimaryCtxRelease", "cuCtxSetCurrent", "cuCtxSynchronize",
    "cuMemAlloc_v2|cuMemAlloc", "cuMemFree_v2|cuMemFree", "cuMemGetInfo_v2|cuMemGetInfo",
    "cuMemcpyHtoD_v2|cuMemcpyHtoD", "cuMemcpyDtoH_v2|cuMemcpyDtoH", "cuMemcpyDtoD_v2|cuMemcpyDtoD",
    "cuMemcpyHtoDAsync_v2|cuMemcpyHtoDAsync", "cuMemcpyDtoHAsync_v2|cuMemcpyDtoHAsync",
    "cuMemcpyDtoDAsync_v2|cuMemcpyDtoDAsync", "cuMemsetD8Async", "cuStreamCreate",
    "cuStreamDestroy_v2|cuStreamDestroy", "cuStreamSynchronize", "cuStreamWaitEvent", "cuEventCreate",
    "cuEventDestroy_v2|cuEventDestroy", "cuEventRecord", "cuEventSynchronize", "cuEventQuery",
    "cuEventElapsedTime|cuEventElapsedTime_v2", "cuModuleLoadData", "cuModuleUnload", "cuModuleGetFunction",
    "cuFuncSetAttribute", "cuLaunchKernel", "cuGetErrorString", "cuGetErrorName",
};
LOADER(baton_cuda_driver, baton_cuda_driver_error, BatonCUDADriver, "the CUDA driver (libcuda)", driver_symbols,
       "libcuda.so.1", "libcuda.so")

static const char *const nvrtc_symbols[] = {
    "nvrtcVersion", "nvrtcGetErrorString", "nvrtcCreateProgram", "nvrtcDestroyProgram", "nvrtcCompileProgram",
    "nvrtcGetPTXSize", "nvrtcGetPTX", "nvrtcGetCUBINSize", "nvrtcGetCUBIN", "nvrtcGetProgramLogSize",
    "nvrtcGetProgramLog",
};
LOADER(baton_nvrtc, baton_nvrtc_error, BatonNVRTC, "NVRTC (libnvrtc)", nvrtc_symbols, "libnvrtc.so",
       "libnvrtc.so.13", "libnvrtc.so.12")

static const char *const cublaslt_symbols[] = {
    "cublasLtCreate", "cublasLtDestroy", "cublasLtGetVersion", "cublasLtGetStatusString",
    "cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", "cublasLtMatmulDescSetAttribute",
    "cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy", "cublasLtMatmulPreferenceCreate",
    "cublasLtMatmulPreferenceDestroy", "cublasLtMatmulPreferenceSetAttribute", "cublasLtMatmulAlgoGetHeuristic",
    "cublasLtMatmul",
};
LOADER(baton_cublaslt, baton_cublaslt_error, BatonCuBLASLt, "cuBLASLt (libcublasLt)", cublaslt_symbols,
       "libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12")

static const char *const nccl_symbols[] = {
    "ncclGetVersion", "ncclGetUniqueId", "ncclCommInitRank", "ncclCommDestroy", "ncclCommGetAsyncError",
    "ncclGetErrorString", "ncclGroupStart", "ncclGroupEnd", "ncclAllGather", "ncclAllReduce", "ncclBroadcast",
    "ncclSend", "ncclRecv", "ncclCommAbort", "ncclGetLastError",
};
LOADER(baton_nccl, baton_nccl_error, BatonNCCL, "NCCL (libnccl)", nccl_symbols, "libnccl.so.2", "libnccl.so")

const char *baton_nvrtc_path(void) { return baton_nvrtc_library.path; }

int baton_cuda_driver_present(void) { return baton_cuda_driver() != NULL; }

// Looked up once, like the tables above: every Hopper attention launch asks for it.
static BatonTensorMapEncodeTiled tensor_map_encode_tiled;
static pthread_once_t tensor_map_encode_tiled_once = PTHREAD_ONCE_INIT;
static void tensor_map_encode_tiled_load(void) {
    if (baton_cuda_driver())
        tensor_map_encode_tiled = (BatonTensorMapEncodeTiled)dlsym(baton_cuda_driver_library.handle, "cuTensorMapEncodeTiled");
}

BatonTensorMapEncodeTiled baton_cuda_tensor_map_encode_tiled(void) {
    pthread_once(&tensor_map_encode_tiled_once, tensor_map_encode_tiled_load);
    return tensor_map_encode_tiled;
}
