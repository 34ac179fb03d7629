import { make } from './unimplemented.ts';

export const command = make('trust');
