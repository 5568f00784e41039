import type { TSchema } from 'typebox'
import { ConfigSchema } from '../config.ts'
import {
  AttributeSchema, CreateBodySchema, CurrentApp, CurrentUst, Encrypt, Expiration, ExistsResponses, GetResponses,
  DeleteResponses, IfVersion, Name, NameListQuery, NamesResponses, TargetUst, UpdateBodySchema, Value, WriteOkSchema, WriteResultSchema, writeItem
} from './attributes.ts'
import { CidSchema, ErrorDetailSchema, ErrorEnvelopeSchema } from './common.ts'

// What the OpenAPI document says beyond the route schemas: the names under which shared
// schemas are published in `components.schemas`, and the constraints the service enforces in
// code rather than with ajv (so that its errors can name the field), stated as JSON Schema.

/** The document is generated from the default configuration; a deployment may set other limits. */
const configDefault = (name: keyof typeof ConfigSchema.properties) => Number((ConfigSchema.properties[name] as { default?: unknown }).default)
export const DEFAULT_MAX_NAME_LENGTH = configDefault('SSO_MAX_NAME_LENGTH')
export const DEFAULT_MAX_BATCH = configDefault('SSO_MAX_BATCH')

/** Inputs the service requires wherever they come from; in the documented (query-string) form of a read they are required there. */
export const REQUIRED_INPUTS = ['current_app'] as const

/**
 * Single form (`name`) or batch form (`data`), never both; the batch form takes `value` and
 * `if_version` per item. routes/request-input.ts `formOf` enforces this with its own messages.
 */
function withForms (schema: TSchema, itemOnly: string[]): Record<string, unknown> {
  const absent = (fields: string[]) => Object.fromEntries(fields.map((field) => [field, false]))
  const published = JSON.parse(JSON.stringify(schema)) as { properties: Record<string, Record<string, unknown>> }
  return {
    ...published,
    properties: { ...published.properties, data: { ...published.properties.data, maxItems: DEFAULT_MAX_BATCH } },
    oneOf: [
      { title: 'Single form', required: ['name'], properties: { name: true, ...absent(['data']) } },
      { title: 'Batch form', required: ['data'], properties: { data: true, ...absent(['name', ...itemOnly]) } }
    ]
  }
}

export interface ComponentSchema {
  /** The schema as the routes use it (matched by value in the generated document). */
  schema: TSchema
  /** What the document publishes instead, when it says more than ajv checks. */
  document?: Record<string, unknown>
}

export const COMPONENT_SCHEMAS: Record<string, ComponentSchema> = {
  Cid: { schema: CidSchema },
  CurrentApp: { schema: CurrentApp },
  CurrentUst: { schema: CurrentUst },
  TargetUst: { schema: TargetUst },
  // Code points, as the service counts them (src/attribute-service.ts checkNames), and no control characters.
  AttributeName: { schema: Name, document: { ...JSON.parse(JSON.stringify(Name)) as Record<string, unknown>, maxLength: DEFAULT_MAX_NAME_LENGTH, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$' } },
  NameList: { schema: NameListQuery, document: { ...JSON.parse(JSON.stringify(NameListQuery)) as Record<string, unknown>, maxItems: DEFAULT_MAX_BATCH } },
  AttributeValue: { schema: Value },
  Encrypt: { schema: Encrypt },
  Expiration: { schema: Expiration },
  IfVersion: { schema: IfVersion },
  WriteItem: { schema: writeItem(false) },
  VersionedWriteItem: { schema: writeItem(true) },
  CreateRequest: { schema: CreateBodySchema, document: withForms(CreateBodySchema, ['value']) },
  UpdateRequest: { schema: UpdateBodySchema, document: withForms(UpdateBodySchema, ['value', 'if_version']) },
  Attribute: { schema: AttributeSchema },
  WriteResult: { schema: WriteResultSchema },
  WriteResponse: { schema: WriteOkSchema },
  GetResponse: { schema: GetResponses[200] },
  ExistsResponse: { schema: ExistsResponses[200] },
  DeleteResponse: { schema: DeleteResponses[200] },
  NamesResponse: { schema: NamesResponses[200] },
  ErrorDetail: { schema: ErrorDetailSchema },
  ErrorEnvelope: { schema: ErrorEnvelopeSchema }
}
