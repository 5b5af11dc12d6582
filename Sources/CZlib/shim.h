// zlib's gz* API reads gzipped and plain files alike (a plain file passes through unchanged).
#include <zlib.h>
