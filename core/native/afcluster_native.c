// The daemon's one native helper: glibc's malloc_trim, so a daemon can hand back to the kernel
// the memory its allocator kept after a load (see core/af/memory.ts). Node-API, so one build
// serves every Node version from 20 on.
#include <node_api.h>
#include <stdbool.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// trim(): releases the allocator's free memory to the kernel; true when some was released,
// false when none was (or the C library has no malloc_trim).
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) != 0;
#endif
  napi_value out;
  napi_get_boolean(env, released, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
