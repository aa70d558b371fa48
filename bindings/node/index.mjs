// @mo/console for ES modules: the CommonJS package (index.js) re-exported by name, so that
// `import { open, Client } from '@mo/console'` and `require('@mo/console')` give the very same
// objects (one native module, one set of error classes: `instanceof` holds across both).
// test/module.test.mjs checks that every export of index.js is named here.
import mo from './index.js'

export const {
  open,
  Client,
  Console,
  EventStream,
  Log,
  MoError,
  ConnectError,
  AuthError,
  TimeoutError,
  NotFound,
  PermissionDenied,
  ProtocolError,
  __napiBindingTarget,
} = mo
export default mo
