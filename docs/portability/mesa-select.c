// build: gcc -O1 -o mesa-select mesa-select.c -lOpenCL   run: RUSTICL_ENABLE=llvmpipe OCL_ICD_VENDORS=DIR_WITH_ONLY_rusticl.icd ./mesa-select
/* Mesa rusticl/llvmpipe 22.3.6 miscompiles  c ? FLOAT_CONST : (float)unsigned_char_or_short
   (k_u8: result 0 instead of 255; k_u16: 23544 = 0x5BF8 = fp16 bit pattern of 255.0 read as an integer). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#define CK(x) do { cl_int e_ = (x); if (e_) { fprintf(stderr, "line %d: error %d\n", __LINE__, e_); exit(1); } } while (0)
static const char *src =
"__kernel void k_u8(__global const uchar* p, __global float* out)\n"
"{\n"
"    size_t i = get_global_id(0);\n"
"    out[i] = i == 33 ? 255.0f : (float)p[i];\n"
"}\n"
"__kernel void k_u16(__global const uchar* p, __global float* out)\n"
"{\n"
"    size_t i = get_global_id(0);\n"
"    out[i] = i == 33 ? 255.0f : (float)(ushort)p[i];\n"
"}\n";
int main(void) {
    enum { N = 64 };
    unsigned char p[N]; float out[N];
    for (int i = 0; i < N; i++) p[i] = (unsigned char)(i * 7 + 3);
    cl_platform_id pl; cl_device_id dev; cl_int e; char name[256];
    CK(clGetPlatformIDs(1, &pl, NULL));
    CK(clGetDeviceIDs(pl, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
    CK(clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL));
    printf("device: %s\n", name);
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &e); CK(e);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &e); CK(e);
    cl_program pr = clCreateProgramWithSource(ctx, 1, &src, NULL, &e); CK(e);
    CK(clBuildProgram(pr, 1, &dev, "", NULL, NULL));
    cl_mem bp = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, N, p, &e); CK(e);
    cl_mem bo = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, N * sizeof(float), NULL, &e); CK(e);
    const char *names[2] = { "k_u8", "k_u16" };
    int fails = 0;
    for (int t = 0; t < 2; t++) {
        cl_kernel k = clCreateKernel(pr, names[t], &e); CK(e);
        CK(clSetKernelArg(k, 0, sizeof bp, &bp));
        CK(clSetKernelArg(k, 1, sizeof bo, &bo));
        size_t gs = N, ls = 32;
        CK(clEnqueueNDRangeKernel(q, k, 1, NULL, &gs, &ls, 0, NULL, NULL));
        CK(clEnqueueReadBuffer(q, bo, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL));
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float want = i == 33 ? 255.0f : (float)p[i];
            if (out[i] != want) { printf("%s: out[%d] = %g, expected %g\n", names[t], i, out[i], want); bad++; }
        }
        printf("%s: %s (%d wrong of %d)\n", names[t], bad ? "FAIL" : "ok", bad, N);
        fails += bad;
        clReleaseKernel(k);
    }
    return fails != 0;
}
