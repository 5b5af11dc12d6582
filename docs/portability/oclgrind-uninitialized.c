/* Oclgrind 21.10's uninitialized-value checker (oclgrind --uninitialized) on correct programs:
 *   ./oclgrind-uninitialized offset  a host write at a non-zero offset into a buffer whose whole
 *                                    was written before: reads of that range are reported
 *   ./oclgrind-uninitialized hi      the .hi half of a 16-wide vector loaded from written memory
 *                                    is reported (.lo is not; a float8's .hi is not)
 *   ./oclgrind-uninitialized halves  .lo + .hi of a float4: the checker crashes (segfault) on the
 *                                    optimiser's shufflevector with undef lanes; fine with
 *                                    --build-options -cl-opt-disable
 * Build: gcc oclgrind-uninitialized.c -o oclgrind-uninitialized -lOpenCL
 * Run:   oclgrind --uninitialized [--build-options -cl-opt-disable] ./oclgrind-uninitialized MODE
 *        (PoCL or any other implementation prints the right values and nothing else)
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define CK(x) do { cl_int e_ = (x); if (e_) { printf("error %d at line %d\n", e_, __LINE__); exit(1); } } while (0)
static const char *src =
  "__kernel void copy(__global const float* a, const int off, __global float* b) { b[get_global_id(0)] = a[off + get_global_id(0)]; }\n"
  "__kernel void hi(__global const float* x, __global float* out) { float16 v = vload16(0, x); vstore8(v.hi, 0, out); }\n"
  "__kernel void halves(__global const float* x, __global float* out) { float4 v = vload4(0, x); float2 s = v.lo + v.hi; out[0] = s.s0; }\n";
int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "offset";
  cl_platform_id p; cl_device_id d; cl_int e;
  CK(clGetPlatformIDs(1, &p, NULL));
  CK(clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL));
  cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &e); CK(e);
  cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &e); CK(e);
  cl_program pr = clCreateProgramWithSource(ctx, 1, &src, NULL, &e); CK(e);
  CK(clBuildProgram(pr, 1, &d, NULL, NULL, NULL));
  float zeros[128] = {0}, values[64], out[64];
  for (int i = 0; i < 64; ++i) values[i] = (float)i;
  cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof zeros, NULL, &e); CK(e);
  cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof out, NULL, &e); CK(e);
  CK(clEnqueueWriteBuffer(q, b, CL_TRUE, 0, sizeof out, zeros, 0, NULL, NULL));
  size_t n = 64, one = 1;
  if (!strcmp(mode, "offset")) {
    /* all 128 floats written as zeros, then floats 64..127 written again: every byte is defined */
    CK(clEnqueueWriteBuffer(q, a, CL_TRUE, 0, sizeof zeros, zeros, 0, NULL, NULL));
    CK(clEnqueueWriteBuffer(q, a, CL_TRUE, 64 * sizeof(float), 64 * sizeof(float), values, 0, NULL, NULL));
    cl_kernel k = clCreateKernel(pr, "copy", &e); CK(e);
    int off = 64;
    CK(clSetKernelArg(k, 0, sizeof a, &a)); CK(clSetKernelArg(k, 1, sizeof off, &off)); CK(clSetKernelArg(k, 2, sizeof b, &b));
    CK(clEnqueueNDRangeKernel(q, k, 1, NULL, &n, NULL, 0, NULL, NULL));
  } else {
    CK(clEnqueueWriteBuffer(q, a, CL_TRUE, 0, 64 * sizeof(float), values, 0, NULL, NULL));
    cl_kernel k = clCreateKernel(pr, mode, &e); CK(e);
    CK(clSetKernelArg(k, 0, sizeof a, &a)); CK(clSetKernelArg(k, 1, sizeof b, &b));
    CK(clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL));
  }
  CK(clEnqueueReadBuffer(q, b, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL));
  printf("%s: out[0] = %g, out[1] = %g\n", mode, out[0], out[1]);
  return 0;
}
