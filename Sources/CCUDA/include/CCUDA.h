// CUDA driver, NVRTC, cuBLASLt and NCCL entry points Baton uses, declared here with our own
// minimal typedefs and resolved with dlopen/dlsym at run time, so no CUDA headers or libraries
// are needed to build and the binary runs (CPU path) on machines without CUDA.
// Values of enums are the ones of the public CUDA 12/13 headers; only those Baton uses appear.
#ifndef BATON_CCUDA_H
#define BATON_CCUDA_H

#include <stddef.h>
#include <stdint.h>

// MARK: - driver API (libcuda.so.1)

typedef int CUresult;  // 0 = CUDA_SUCCESS
typedef int CUdevice;
typedef uint64_t CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;

enum {
    BATON_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    BATON_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    BATON_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    BATON_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    BATON_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    BATON_CU_STREAM_NON_BLOCKING = 1,
    BATON_CU_EVENT_DEFAULT = 0,
};

typedef struct {
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
    CUresult (*cuMemFree)(CUdeviceptr pointer);
    CUresult (*cuMemGetInfo)(size_t *freeBytes, size_t *totalBytes);
    CUresult (*cuMemcpyHtoD)(CUdeviceptr destination, const void *source, size_t bytes);
    CUresult (*cuMemcpyDtoH)(void *destination, CUdeviceptr source, size_t bytes);
    CUresult (*cuMemcpyDtoD)(CUdeviceptr destination, CUdeviceptr source, size_t bytes);
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr destination, const void *source, size_t bytes, CUstream stream);
    CUresult (*cuMemcpyDtoHAsync)(void *destination, CUdeviceptr source, size_t bytes, CUstream stream);
    CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr destination, CUdeviceptr source, size_t bytes, CUstream stream);
    CUresult (*cuMemsetD8Async)(CUdeviceptr destination, unsigned char value, size_t count, CUstream stream);
    CUresult (*cuStreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*cuStreamDestroy)(CUstream stream);
    CUresult (*cuStreamSynchronize)(CUstream stream);
    CUresult (*cuStreamWaitEvent)(CUstream stream, CUevent event, unsigned int flags);
    CUresult (*cuEventCreate)(CUevent *event, unsigned int flags);
    CUresult (*cuEventDestroy)(CUevent event);
    CUresult (*cuEventRecord)(CUevent event, CUstream stream);
    CUresult (*cuEventSynchronize)(CUevent event);
    CUresult (*cuEventQuery)(CUevent event);  // 0 done, 600 (CUDA_ERROR_NOT_READY) pending
    CUresult (*cuEventElapsedTime)(float *milliseconds, CUevent start, CUevent end);
    CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
    CUresult (*cuLaunchKernel)(CUfunction function, unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                               unsigned int blockX, unsigned int blockY, unsigned int blockZ,
                               unsigned int sharedBytes, CUstream stream, void **parameters, void **extra);
    CUresult (*cuGetErrorString)(CUresult error, const char **text);
    CUresult (*cuGetErrorName)(CUresult error, const char **text);
} BatonCUDADriver;

enum {
    BATON_CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9,
    BATON_CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
    BATON_CU_TENSOR_MAP_SWIZZLE_128B = 3,
    BATON_CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3,
    BATON_CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0,  // out-of-bounds elements read as zero
};

/// `map` points to a CUtensorMap: 128 bytes, 64-byte aligned (what TMA copies read).
typedef CUresult (*BatonTensorMapEncodeTiled)(void *map, int dataType, uint32_t rank, void *address,
                                              const uint64_t *dims, const uint64_t *strides, const uint32_t *box,
                                              const uint32_t *elementStrides, int interleave, int swizzle,
                                              int l2Promotion, int oobFill);

/// cuTensorMapEncodeTiled (CUDA 12+), looked up apart from the driver table so that an older
/// driver still loads; NULL when the driver lacks it (the Hopper attention kernel is then unused).
BatonTensorMapEncodeTiled baton_cuda_tensor_map_encode_tiled(void);

// MARK: - NVRTC (libnvrtc.so)

typedef int nvrtcResult;  // 0 = NVRTC_SUCCESS
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct {
    nvrtcResult (*nvrtcVersion)(int *major, int *minor);
    const char *(*nvrtcGetErrorString)(nvrtcResult result);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *program, const char *source, const char *name,
                                      int headerCount, const char *const *headers, const char *const *includeNames);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *program);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram program, int optionCount, const char *const *options);
    nvrtcResult (*nvrtcGetPTXSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetPTX)(nvrtcProgram program, char *ptx);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram program, char *cubin);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram program, char *log);
} BatonNVRTC;

// MARK: - cuBLASLt (libcublasLt.so)

typedef int cublasStatus_t;  // 0 = CUBLAS_STATUS_SUCCESS
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque_st *cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque_st *cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque_st *cublasLtMatmulPreference_t;

typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

enum {
    BATON_CUDA_R_16F = 2,
    BATON_CUDA_R_32F = 0,
    BATON_CUDA_R_16BF = 14,
    BATON_CUBLAS_COMPUTE_32F = 68,
    BATON_CUBLAS_OP_N = 0,
    BATON_CUBLAS_OP_T = 1,
    BATON_CUBLASLT_MATMUL_DESC_TRANSA = 3,
    BATON_CUBLASLT_MATMUL_DESC_TRANSB = 4,
    BATON_CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    BATON_CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    BATON_CUBLASLT_EPILOGUE_BIAS = 4,
    BATON_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
};

typedef struct {
    cublasStatus_t (*cublasLtCreate)(cublasLtHandle_t *handle);
    cublasStatus_t (*cublasLtDestroy)(cublasLtHandle_t handle);
    size_t (*cublasLtGetVersion)(void);
    const char *(*cublasLtGetStatusString)(cublasStatus_t status);
    cublasStatus_t (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *desc, int computeType, int scaleType);
    cublasStatus_t (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t desc);
    cublasStatus_t (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t desc, int attribute, const void *value,
                                                     size_t size);
    cublasStatus_t (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *layout, int type, uint64_t rows,
                                                 uint64_t cols, int64_t leadingDimension);
    cublasStatus_t (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t layout);
    cublasStatus_t (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *preference);
    cublasStatus_t (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t preference);
    cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t preference, int attribute,
                                                           const void *value, size_t size);
    cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                     cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                     cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                     cublasLtMatmulPreference_t preference, int requested,
                                                     cublasLtMatmulHeuristicResult_t *results, int *returned);
    cublasStatus_t (*cublasLtMatmul)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                                     const void *a, cublasLtMatrixLayout_t aLayout, const void *b,
                                     cublasLtMatrixLayout_t bLayout, const void *beta, const void *c,
                                     cublasLtMatrixLayout_t cLayout, void *d, cublasLtMatrixLayout_t dLayout,
                                     const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceBytes,
                                     CUstream stream);
} BatonCuBLASLt;

// MARK: - NCCL (libnccl.so.2)

typedef int ncclResult_t;  // 0 = ncclSuccess
typedef struct ncclComm *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;

enum {
    BATON_NCCL_UINT8 = 1,
    BATON_NCCL_INT32 = 2,
    BATON_NCCL_FLOAT16 = 6,
    BATON_NCCL_FLOAT32 = 7,
    BATON_NCCL_BFLOAT16 = 9,
    BATON_NCCL_SUM = 0,
    BATON_NCCL_MAX = 2,
};

typedef struct {
    ncclResult_t (*ncclGetVersion)(int *version);
    ncclResult_t (*ncclGetUniqueId)(ncclUniqueId *id);
    ncclResult_t (*ncclCommInitRank)(ncclComm_t *comm, int ranks, ncclUniqueId id, int rank);
    ncclResult_t (*ncclCommDestroy)(ncclComm_t comm);
    ncclResult_t (*ncclCommGetAsyncError)(ncclComm_t comm, ncclResult_t *error);
    const char *(*ncclGetErrorString)(ncclResult_t result);
    ncclResult_t (*ncclGroupStart)(void);
    ncclResult_t (*ncclGroupEnd)(void);
    ncclResult_t (*ncclAllGather)(const void *send, void *receive, size_t count, int type, ncclComm_t comm,
                                  CUstream stream);
    ncclResult_t (*ncclAllReduce)(const void *send, void *receive, size_t count, int type, int op, ncclComm_t comm,
                                  CUstream stream);
    ncclResult_t (*ncclBroadcast)(const void *send, void *receive, size_t count, int type, int root,
                                  ncclComm_t comm, CUstream stream);
    ncclResult_t (*ncclSend)(const void *send, size_t count, int type, int peer, ncclComm_t comm, CUstream stream);
    ncclResult_t (*ncclRecv)(void *receive, size_t count, int type, int peer, ncclComm_t comm, CUstream stream);
    ncclResult_t (*ncclCommAbort)(ncclComm_t comm);
    const char *(*ncclGetLastError)(ncclComm_t comm);  // NCCL >= 2.13: text of the last error
} BatonNCCL;

// MARK: - loader

/// Each loader dlopens its library once (thread-safe) and returns the function table, or NULL
/// with `baton_<library>_error()` naming the library and every path tried, or the missing symbol.
/// Search order: the dynamic loader's path, $CUDA_HOME/lib64, $CUDA_HOME/targets/x86_64-linux/lib,
/// /usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib, a PyTorch install's
/// site-packages/nvidia/*/lib, each with the versioned names (.so.13, .so.12, ...).
const BatonCUDADriver *baton_cuda_driver(void);
const BatonNVRTC *baton_nvrtc(void);
const BatonCuBLASLt *baton_cublaslt(void);
const BatonNCCL *baton_nccl(void);

/// Why the last failed loader call failed (per library; stable until the process ends).
const char *baton_cuda_driver_error(void);
const char *baton_nvrtc_error(void);
const char *baton_cublaslt_error(void);
const char *baton_nccl_error(void);

/// The path each library was loaded from (empty until loaded).
const char *baton_nvrtc_path(void);

/// Returns 1 when the CUDA driver library can be loaded on this machine, else 0.
int baton_cuda_driver_present(void);

#endif
