import type { NameSpec, WriteSpec } from '../attribute-service.ts'
import { invalidInput, missingInput } from '../errors.ts'

// The fields of an attribute call under their REST names, whichever transport brought them,
// and the shapes the operations read from them: single form (`name`) or batch form (`data`).

export type Fields = Record<string, unknown>

/** Single form (`name`) or batch form (`data`); exactly one of them. */
export function formOf (fields: Fields): 'single' | 'batch' {
  const hasName = fields.name !== undefined
  const hasData = fields.data !== undefined
  if (hasName && hasData) throw invalidInput('/data', 'Give either name (single form) or data (batch form), not both')
  if (!hasName && !hasData) throw missingInput('/name', 'Give name (single form) or data (batch form)')
  return hasName ? 'single' : 'batch'
}

export function nameSpecs (fields: Fields): { batch: boolean, specs: NameSpec[] } {
  if (formOf(fields) === 'single') return { batch: false, specs: [{ path: '/name', name: fields.name as string }] }
  const names = fields.data as string[]
  return { batch: true, specs: names.map((name, index) => ({ path: `/data/${index}`, name })) }
}

export function writeSpecs (fields: Fields): { batch: boolean, specs: WriteSpec[] } {
  if (formOf(fields) === 'single') {
    return {
      batch: false,
      specs: [{
        path: '',
        name: fields.name as string,
        hasValue: Object.hasOwn(fields, 'value'),
        value: fields.value,
        encrypt: fields.encrypt as boolean | undefined,
        expiration: fields.expiration as number | null | undefined,
        ifVersion: fields.if_version as number | undefined
      }]
    }
  }
  for (const key of ['value', 'if_version']) {
    if (Object.hasOwn(fields, key)) throw invalidInput(`/${key}`, `${key} belongs in each data item in the batch form`)
  }
  const items = fields.data as Fields[]
  return {
    batch: true,
    specs: items.map((item, index) => ({
      path: `/data/${index}`,
      name: item.name as string,
      hasValue: Object.hasOwn(item, 'value'),
      value: item.value,
      encrypt: (item.encrypt ?? fields.encrypt) as boolean | undefined,
      expiration: (Object.hasOwn(item, 'expiration') ? item.expiration : fields.expiration) as number | null | undefined,
      ifVersion: item.if_version as number | undefined
    }))
  }
}

export function byName<T> (specs: NameSpec[], values: T[]): Record<string, T> {
  // fromEntries defines own properties, so a name like "__proto__" stays an ordinary key.
  return Object.fromEntries(specs.map((spec, index) => [spec.name, values[index]!]))
}

/**
 * The fields of a user-attribute call, with Zato's names taken in: `ust` (3.2; 3.0 sent
 * `current_ust`) for the caller's UST and `user_id` for `target_user`. A field given under
 * both names must agree.
 */
export function userFields (fields: Fields): Fields {
  const aliases = [['ust', 'current_ust'], ['user_id', 'target_user']] as const
  for (const [alias, name] of aliases) {
    if (fields[alias] === undefined) continue
    if (fields[name] !== undefined && fields[name] !== fields[alias]) throw invalidInput(`/${alias}`, `Differs from ${name}; give it once`)
    fields[name] = fields[alias]
    delete fields[alias]
  }
  return fields
}
