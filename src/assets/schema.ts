import { z } from 'zod';
import { ASSET_TYPES } from './names';

/**
 * asset.yaml, validated with zod. Per-type `spec` fields follow the Azure ML v2 shapes where they fit
 * (docs/assets.md). Unknown keys in `spec` are kept (teams add their own), unknown top-level keys are not.
 */
const io = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]));

export const SourceObject = z.object({
  key: z.string().min(1),
  size: z.number().int().nonnegative(),
  etag: z.string().optional(),
  version: z.string().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

export const SPEC_SCHEMAS = {
  dataset: z
    .object({
      type: z.enum(['uri_file', 'uri_folder', 'mltable']).default('uri_folder'),
      path: z.string().default('.'),
      source: z
        .object({
          uri: z.string().min(1),
          objects: z.array(SourceObject),
          hashed: z.boolean().default(false),
        })
        .optional(),
    })
    .passthrough(),
  model: z
    .object({
      type: z.enum(['custom_model', 'mlflow_model', 'triton_model', 'onnx_model', 'pytorch_model']).default('custom_model'),
      path: z.string().default('.'),
      flavors: z.record(z.string(), z.unknown()).optional(),
      environment: z.string().optional(),
    })
    .passthrough(),
  environment: z
    .object({
      image: z.string().optional(),
      conda_file: z.string().optional(),
      build: z.object({ path: z.string() }).optional(),
    })
    .passthrough(),
  component: z
    .object({
      command: z.string().optional(),
      inputs: io.optional(),
      outputs: io.optional(),
      environment: z.string().optional(),
      code: z.string().optional(),
    })
    .passthrough(),
  endpoint: z
    .object({
      model: z.string().optional(),
      settings: z.record(z.string(), z.unknown()).optional(),
    })
    .passthrough(),
  experiment: z
    .object({
      command: z.string().optional(),
      inputs: io.optional(),
      outputs: io.optional(),
      params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      environment: z.string().optional(),
      compute: z.string().optional(),
    })
    .passthrough(),
} as const;

export const DigestFile = z.object({ path: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });

export const LineageInput = z.object({
  ref: z.string(),
  type: z.enum(ASSET_TYPES),
  name: z.string(),
  version: z.string(),
  digest: z.string(),
  repo: z.string().optional(),
});

export const AssetDoc = z
  .object({
    type: z.enum(ASSET_TYPES),
    name: z.string(),
    version: z.string(),
    description: z.string().default(''),
    tags: z.record(z.string(), z.string()).default({}),
    created: z.object({ time: z.string(), author: z.string() }),
    spec: z.record(z.string(), z.unknown()).default({}),
    digest: z.object({ algorithm: z.literal('sha256'), value: z.string().regex(/^[0-9a-f]{64}$/), files: z.array(DigestFile) }),
    lineage: z
      .object({
        commit: z.string().nullable(),
        repo: z.string().optional(),
        inputs: z.array(LineageInput).default([]),
        run: z.object({ id: z.string(), experiment: z.string(), commit: z.string() }).optional(),
      })
      .default({ commit: null, inputs: [] }),
  })
  .strict();

export type AssetDocument = z.infer<typeof AssetDoc>;
export type DigestEntry = z.infer<typeof DigestFile>;
export type LineageEntry = z.infer<typeof LineageInput>;
export type SourceObjectEntry = z.infer<typeof SourceObject>;
