// Names and labels without the manifest schema (valibot): `rkt list`,
// `rkt image list` and the `rkt run` of a stored image need only these.

export type Label = { name: string; value: string };

/** AC Identifier: lowercase, digits, separators `-._~/` between runs. */
export const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;
/** AC Name: lowercase, digits and dashes (app, label, mount point names). */
export const AC_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

export function labelValue(labels: readonly Label[] | undefined, name: string): string | undefined {
  return labels?.find((l) => l.name === name)?.value;
}

/** `name:version` as rkt shows it. */
export function displayName(m: { name: string; labels?: readonly Label[] | undefined }): string {
  const version = labelValue(m.labels, 'version');
  return version ? `${m.name}:${version}` : m.name;
}
