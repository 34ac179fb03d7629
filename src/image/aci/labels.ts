// Label helpers without the manifest schema (valibot): `rkt list` and
// `rkt image list` need only these, and must start fast.

export type Label = { name: string; value: string };

export function labelValue(labels: readonly Label[] | undefined, name: string): string | undefined {
  return labels?.find((l) => l.name === name)?.value;
}

/** `name:version` as rkt shows it. */
export function displayName(m: { name: string; labels?: readonly Label[] | undefined }): string {
  const version = labelValue(m.labels, 'version');
  return version ? `${m.name}:${version}` : m.name;
}
