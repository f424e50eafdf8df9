import { ConfigError } from '../../common/index.js';

/** Extracts named topic levels; returns undefined when the topic does not match the template. */
export type TopicFieldExtractor = (topic: string) => Record<string, string> | undefined;

/**
 * Compiles a topic template such as `plant/{site}/line/{line}/{sensor}` into an extractor that
 * lifts the `{name}` levels of a matching topic into fields. Other levels must match literally;
 * a final `#` matches any remaining levels. A topic with a different shape yields undefined (the
 * record is still forwarded, without fields).
 *
 * @throws ConfigError when the template is empty, repeats a name, or puts `#` before the end.
 */
export function compileTopicTemplate(template: string): TopicFieldExtractor {
  const levels = template.split('/');
  const names = new Set<string>();
  const problems: string[] = [];
  const slots: { index: number; name: string }[] = [];
  const literals: { index: number; text: string }[] = [];
  let rest = false;
  levels.forEach((level, index) => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(level);
    if (m?.[1] !== undefined) {
      if (names.has(m[1])) problems.push(`name {${m[1]}} appears twice`);
      names.add(m[1]);
      slots.push({ index, name: m[1] });
    } else if (level === '#') {
      if (index !== levels.length - 1) problems.push('# is allowed only as the last level');
      rest = true;
    } else if (level.includes('{') || level.includes('}') || level === '+') {
      problems.push(`level "${level}" must be a literal or {name}`);
    } else {
      literals.push({ index, text: level });
    }
  });
  if (template === '' || slots.length === 0) problems.push('needs at least one {name} level');
  if (problems.length > 0) {
    throw new ConfigError('topic template', [
      { field: 'topicTemplate', message: `"${template}": ${problems.join('; ')}` },
    ]);
  }
  const fixedLevels = rest ? levels.length - 1 : levels.length;
  return (topic) => {
    const parts = topic.split('/');
    if (rest ? parts.length < fixedLevels : parts.length !== fixedLevels) return undefined;
    for (const l of literals) if (parts[l.index] !== l.text) return undefined;
    const fields: Record<string, string> = {};
    for (const s of slots) fields[s.name] = parts[s.index] as string;
    return fields;
  };
}
