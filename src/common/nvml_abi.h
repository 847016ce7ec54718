/* nvml_abi.h - the slice of the NVML C ABI that vgpu touches.
 *
 * Why this exists: nvml.h is not installed on CI or development machines, and NVML must be
 * loaded with dlopen anyway. These declarations follow nvml.h of driver 5xx. Unlike
 * cuda_abi.h (tests/unit/test_cuda_abi_matches.c) they are not yet checked against the real
 * header; the GPU suite exercises them against the real library.
 */
#ifndef VGPU_NVML_ABI_H
#define VGPU_NVML_ABI_H

#include <time.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_UNKNOWN = 999,
};

typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96

typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;
#define NVML_STRUCT_VERSION(data, ver)                                                             \
    (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

typedef struct nvmlProcessInfo_v1_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* v2 and v3 entry points share this layout */
typedef struct nvmlProcessInfo_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct nvmlUtilization_st {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

/* nvmlDeviceGetSamples: the driver's own recent readings (for utilisation, one per sample
 * period of the GPU, about 1/6 s to 1 s), oldest first */
typedef enum nvmlSamplingType_enum {
    NVML_TOTAL_POWER_SAMPLES = 0,
    NVML_GPU_UTILIZATION_SAMPLES = 1,
} nvmlSamplingType_t;

typedef enum nvmlValueType_enum {
    NVML_VALUE_TYPE_DOUBLE = 0,
    NVML_VALUE_TYPE_UNSIGNED_INT = 1,
    NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
    NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
    NVML_VALUE_TYPE_SIGNED_INT = 5,
} nvmlValueType_t;

typedef union nvmlValue_st {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct nvmlSample_st {
    unsigned long long timeStamp; /* CPU timestamp in microseconds */
    nvmlValue_t sampleValue;
} nvmlSample_t;

/* NVML's sample timestamps: CPU (CLOCK_REALTIME) time in microseconds */
static inline unsigned long long nvml_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

/* a sample's value as a number, whatever type the driver chose */
static inline double nvml_value_number(nvmlValueType_t type, nvmlValue_t v)
{
    switch (type) {
    case NVML_VALUE_TYPE_DOUBLE:
        return v.dVal;
    case NVML_VALUE_TYPE_UNSIGNED_INT:
        return v.uiVal;
    case NVML_VALUE_TYPE_UNSIGNED_LONG:
        return (double)v.ulVal;
    case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
        return (double)v.ullVal;
    case NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return (double)v.sllVal;
    case NVML_VALUE_TYPE_SIGNED_INT:
        return v.siVal;
    default:
        return -1;
    }
}

/* The mean of utilisation readings (percent), -1 if none is valid; *newest (may be NULL)
 * is raised to the newest timestamp seen. */
static inline double nvml_samples_mean(nvmlValueType_t type, const nvmlSample_t *s, unsigned n,
                                       unsigned long long *newest)
{
    double sum = 0;
    unsigned used = 0;
    for (unsigned k = 0; k < n; k++) {
        double x = nvml_value_number(type, s[k].sampleValue);
        if (newest && s[k].timeStamp > *newest) *newest = s[k].timeStamp;
        if (x < 0 || x > 100) continue;
        sum += x;
        used++;
    }
    return used ? sum / used : -1;
}

typedef struct nvmlProcessUtilizationSample_st {
    unsigned int pid;
    unsigned long long timeStamp; /* CPU timestamp in microseconds */
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

#endif
