// The file name of this platform's prebuilt addon, `mo.<platform>-<arch>[-<abi>].node`: the name
// the napi loader (native.js) requires next to itself. Shared by build.mjs and pack.mjs.
export function addonName() {
  const libc =
    process.platform === 'linux' ? (process.report?.getReport().header.glibcVersionRuntime ? '-gnu' : '-musl') : ''
  const arch = process.platform === 'win32' ? `${process.arch}-msvc` : `${process.arch}${libc}`
  return `mo.${process.platform}-${arch}.node`
}

/** The name cargo gives the mo-node cdylib on this platform. */
export function cargoLibName() {
  return { linux: 'libmo_node.so', darwin: 'libmo_node.dylib', win32: 'mo_node.dll' }[process.platform]
}
