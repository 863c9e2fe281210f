# Build description for the xway native addon.
#
# The host transport needs Linux (memfd_create, eventfd, epoll, SCM_RIGHTS,
# SO_PEERCRED). Elsewhere we still build a tiny module so that `require()`
# works and the JS layer can ask `platformAvailable` instead of catching a
# load error.
{
  'targets': [
    {
      'target_name': 'xway_native',
      'defines': ['NAPI_VERSION=8'],
      'conditions': [
        ['OS=="linux"', {
          'sources': [
            'src/addon.c',
            'src/errors.c',
            'src/args.c',
            'src/handle.c',
            'src/segment.c',
            'src/evtchn.c',
            'src/ctl.c',
            'src/xen.c',
            'src/copy.c',
            'src/heap.c',
            'src/poller.c',
            'src/phases.c',
          ],
          'defines': ['XWAY_HOST_LINUX=1'],
          # common.gypi's Release adds -O3; we want -O2, stated once.
          'cflags!': ['-O3'],
          'cflags': ['-O2', '-Wall', '-Wextra'],
          'cflags_c': ['-std=gnu11'],
          # xen.c loads Xen's libraries at run time (dlopen), never at link time.
          'libraries': ['-ldl', '-lpthread'],
        }, {
          'sources': ['src/addon.c'],
        }],
      ],
    },
  ],
}
