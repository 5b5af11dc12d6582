/* Oclgrind 21.10 --uninitialized false positive: stale shadow memory for a
 * reused buffer number.
 * Build: gcc oclgrind-stale-shadow.c -o repro -lOpenCL
 * Run:   oclgrind --uninitialized ./repro          (reports at ...0x1000000000004)
 *        oclgrind --uninitialized ./repro keep     (A not released first: no report)
 *        OCL_ICD_VENDORS=DIR_WITH_ONLY_pocl.icd ./repro     (reference: prints 2 2)
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CK(x) do { cl_int e_ = (x); if (e_) { printf("error %d at line %d\n", e_, __LINE__); exit(1); } } while (0)
static const char *src =
  "__kernel void fill(__global float *b) { b[get_global_id(0)] = 1.0f; }\n"
  "__kernel void twice(__global float *b) { b[get_global_id(0)] *= 2.0f; }\n";
int main(int argc, char **argv) {
  int keep = argc > 1 && !strcmp(argv[1], "keep");
  cl_platform_id p; cl_device_id d; cl_int e;
  CK(clGetPlatformIDs(1, &p, NULL));
  CK(clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL));
  cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &e); CK(e);
  cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &e); CK(e);
  cl_program pr = clCreateProgramWithSource(ctx, 1, &src, NULL, &e); CK(e);
  CK(clBuildProgram(pr, 1, &d, NULL, NULL, NULL));
  cl_kernel fill = clCreateKernel(pr, "fill", &e); CK(e);
  cl_kernel twice = clCreateKernel(pr, "twice", &e); CK(e);

  /* 1. 4-byte buffer A, used by a kernel (plugin creates a 4-byte shadow for buffer #1) */
  size_t n1 = 1;
  cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, n1 * 4, NULL, &e); CK(e);
  CK(clSetKernelArg(fill, 0, sizeof a, &a));
  CK(clEnqueueNDRangeKernel(q, fill, 1, NULL, &n1, NULL, 0, NULL, NULL));
  CK(clFinish(q));
  /* 2. release A, then create a larger buffer B: it gets A's buffer number back */
  if (!keep) CK(clReleaseMemObject(a));
  size_t n2 = 2;
  cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, n2 * 4, NULL, &e); CK(e);
  /* 3. fill B completely, then read it back in a second kernel */
  CK(clSetKernelArg(fill, 0, sizeof b, &b));
  CK(clEnqueueNDRangeKernel(q, fill, 1, NULL, &n2, NULL, 0, NULL, NULL));
  CK(clSetKernelArg(twice, 0, sizeof b, &b));
  CK(clEnqueueNDRangeKernel(q, twice, 1, NULL, &n2, NULL, 0, NULL, NULL));
  float out[2];
  CK(clEnqueueReadBuffer(q, b, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL));
  printf("%g %g\n", out[0], out[1]);
  if (keep) clReleaseMemObject(a);
  clReleaseMemObject(b);
  return 0;
}
