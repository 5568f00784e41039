// The fetch client @hey-api/openapi-ts generates (test/generated/hey-api) names the DOM's global
// `BodyInit`; the project compiles without the DOM library, and Node's own fetch types it so.
declare global {
  type BodyInit = import('undici-types').BodyInit
}

export {}
