// The OpenCL C API. We target OpenCL 1.2 so that every platform (NVIDIA, AMD, Intel, PoCL,
// Apple) accepts the calls we make; 2.x/3.0 features are not used.
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#if defined(__APPLE__)
#include <OpenCL/opencl.h>
#else
#include <CL/cl.h>
#endif
