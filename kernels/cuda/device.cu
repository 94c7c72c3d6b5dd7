#include "kernels/cuda/device.h"

#include <cstdio>
#include <cuda_runtime.h>

#define CUDA_TRY(call)                                                                   \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) {                                                         \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                         cudaGetErrorString(e_));                                        \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)

extern "C" int l3d_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess)
        return 0;
    return n;
}

extern "C" int l3d_cuda_device_name(char *buf, size_t n)
{
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess)
        return -1;
    std::snprintf(buf, n, "%s", p.name);
    return 0;
}

__global__ static void saxpy_kernel(float a, const float *x, float *y, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

extern "C" int l3d_cuda_saxpy(float a, const float *x, float *y, size_t n)
{
    float *dx = nullptr, *dy = nullptr;
    int rc = -1;
    unsigned blocks = (unsigned)((n + 255) / 256);
    CUDA_TRY(cudaMalloc(&dx, n * sizeof(float)));
    CUDA_TRY(cudaMalloc(&dy, n * sizeof(float)));
    CUDA_TRY(cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(dy, y, n * sizeof(float), cudaMemcpyHostToDevice));
    saxpy_kernel<<<blocks, 256>>>(a, dx, dy, n);
    CUDA_TRY(cudaGetLastError());
    CUDA_TRY(cudaMemcpy(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    rc = 0;
fail:
    cudaFree(dx);
    cudaFree(dy);
    return rc;
}
