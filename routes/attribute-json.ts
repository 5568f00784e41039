import { isoTime, type NameSpec, type ReadAttribute } from '../src/attribute-service.ts'

// The body of a batch GET, built as text from the values' stored JSON. The route's response
// schema (GetResponses) still describes it, and a test checks that fast-json-stringify on that
// schema writes the same bytes from the parsed values; building the views and serializing
// them cost a batch of 20 about three times as much (D25).

/** `{"cid":…,"status":"ok","result":{name: attribute, …}}`, in the schema's property order. */
export function batchGetBody (cid: string, specs: NameSpec[], attributes: Array<ReadAttribute | null>, withSubStatus = false): string {
  let result = ''
  for (let index = 0; index < specs.length; index++) {
    const name = JSON.stringify(specs[index]!.name)
    result += `${index === 0 ? '' : ','}${name}:${attributeJson(name, attributes[index] ?? null)}`
  }
  return `{"cid":${JSON.stringify(cid)},"status":"ok",${withSubStatus ? '"sub_status":[],' : ''}"result":{${result}}}`
}

function attributeJson (nameJson: string, attribute: ReadAttribute | null): string {
  if (attribute === null) return '{"found":false}'
  // Stored values are JSON.stringify's output; parsing one proves it is JSON before it goes
  // into the body, so a damaged record fails the request instead of the client's parser.
  JSON.parse(attribute.valueJson)
  const expires = attribute.expiresAt === null ? 'null' : `"${isoTime(attribute.expiresAt)}"`
  return `{"found":true,"name":${nameJson},"value":${attribute.valueJson},` +
    `"creation_time":"${isoTime(attribute.createdAt)}","last_modified":"${isoTime(attribute.modifiedAt)}",` +
    `"expiration_time":${expires},"is_encrypted":${attribute.encrypted},"version":${attribute.version}}`
}
