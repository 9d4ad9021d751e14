import { describe, expect, it } from 'vitest';
import { chooseModel, fallbackModels } from '../../src/providers/model-choice.js';
import { builtInModels, ModelRegistry } from '../../src/providers/registry.js';
import { expectExaiError } from '../support/assertions.js';

const everything = new ModelRegistry(builtInModels);
const glmOnly = new ModelRegistry(builtInModels.filter((model) => model.provider === 'glm'));
const kimiOnly = new ModelRegistry(builtInModels.filter((model) => model.provider === 'kimi'));

describe('model "auto"', () => {
  it('chooses per tool category', () => {
    expect(chooseModel(everything, 'reasoning').name).toBe('glm-4.6');
    expect(chooseModel(everything, 'balanced').name).toBe('kimi-k2-0905-preview');
    expect(chooseModel(everything, 'fast').name).toBe('kimi-k2-turbo-preview');
    expect(chooseModel(glmOnly, 'fast').name).toBe('glm-4.5-flash');
  });

  it('meets the call\u2019s needs: vision strictly, thinking and web search where a model has them', () => {
    expect(chooseModel(everything, 'balanced', { vision: true }).name).toBe('kimi-latest');
    expect(chooseModel(glmOnly, 'balanced', { vision: true }).name).toBe('glm-4.5v');
    expect(chooseModel(kimiOnly, 'reasoning', { thinking: true }).name).toBe('kimi-thinking-preview');
    // No Kimi thinking model searches the web: search wins over thinking.
    expect(chooseModel(kimiOnly, 'reasoning', { thinking: true, webSearch: true }).name).toBe('kimi-k2-0905-preview');
    const compat = new ModelRegistry(builtInModels.filter((model) => model.name === 'glm-4.5-flash'));
    expect(chooseModel(compat, 'reasoning', { thinking: true }).name).toBe('glm-4.5-flash');
  });

  it('says clearly when nothing can read images, and when nothing is configured', async () => {
    const blind = new ModelRegistry(builtInModels.filter((model) => !model.capabilities.vision));
    expect(() => chooseModel(blind, 'balanced', { vision: true })).toThrow(/No configured model can read images/);
    const error = await expectExaiError(Promise.resolve().then(() => chooseModel(new ModelRegistry([]), 'balanced')));
    expect(error.message).toContain('no provider is configured');
  });

  it('falls back to another provider\u2019s model of the same category', () => {
    expect(fallbackModels(everything, 'reasoning', everything.resolve('glm-4.6'))).toEqual(['kimi-k2-0905-preview']);
    expect(fallbackModels(glmOnly, 'reasoning', glmOnly.resolve('glm-4.6'))).toEqual([]);
  });
});
